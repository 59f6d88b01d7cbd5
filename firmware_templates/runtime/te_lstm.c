/*
 * te_lstm.c - int8 UNIDIRECTIONAL_SEQUENCE_LSTM, as TensorFlow Lite Micro
 * computes it.
 *
 * Where the arithmetic comes from: TFLM's own LSTM kernel
 * (micro/kernels/unidirectional_sequence_lstm.cc, lstm_eval.h LstmStep /
 * CalculateLstmGate / UpdateLstmCell / UpdateLstmHidden, lstm_eval.cc,
 * lstm_eval_common.cc for the parameters), which is built from TFLite's
 * reference integer kernels: reference_integer_ops::FullyConnected (int8 ->
 * int16), MulElementwise, and the int16 Logistic and Tanh of
 * reference_integer_ops/logistic.h and tanh.h (a 256-entry table with linear
 * interpolation). One step, for one batch row, every gate g with the hidden
 * state h of the previous step:
 *
 *   gate_g = sat16(MBQM(bias_g + w_in_g . (x - x_zp), in_g))           (Q3.12)
 *          + sat16(MBQM(w_rec_g . (h - h_zp), rec_g)), saturated to int16
 *   i, f, o = sigmoid16(gate)  g = tanh16(gate, 3, 0)                    (Q0.15)
 *   c = sat16(MBQM(f * c, forget)) + sat16(MBQM(i * g, input)), saturated
 *   c = clamp(c, -cell_clip, cell_clip)                      (if clip > 0)
 *   h = sat8(MBQM(tanh16(c, tanh_mult, tanh_shift) * o, hidden) + h_zp)
 *
 * MBQM is tflite::MultiplyByQuantizedMultiplier with double rounding
 * (te_mul_by_quantized_mult); every multiplier comes from TFLM's Prepare,
 * reproduced on the host in tinyedge/ops/lstm.py. The zero points are folded
 * into b_in / b_rec on the host (bias - zp * row sums; the same int32 sum,
 * added here with wrap-around so that it is the same modulo 2^32 even if a
 * folded bias leaves int32). The hidden state's scale and zero point are the
 * output state tensor's (TFLM does not read the op's intermediates), and the
 * op's output is the new hidden state, copied (TFLM ignores the output
 * tensor's own quantization).
 *
 * The cell's tanh: TFLM rescales the cell (scale 2^p, p = log2 of the cell
 * scale, rounded) to the table's input format with (c * 3 << (12 + p)) when
 * 12 + p >= 0, else (c * 3 + round) >> -(12 + p): a tanh at every cell
 * scale, unlike TFLite, whose ApplyTanh exists for p in -15..-9 only.
 */
#include "te_lstm.h"

#include "te_common.h"

#define TE_INT16_MIN (-32768)
#define TE_INT16_MAX 32767

/* TFLM's sigmoid_table_uint16 (kernels/internal/common.h): sigmoid(k / 24)
 * in unsigned Q0.16 for k = 0..255, the values TFLM ships (they are not all
 * round(65536 * sigmoid(k / 24)), so they are quoted, not recomputed;
 * tests/test_ops_matmul_lstm.py checks the functions below against TFLM's
 * int16 LOGISTIC and TANH on every int16 input). One table serves both
 * functions: tanh(x) = 2 * sigmoid(2x) - 1. */
static const uint16_t sigmoid_table[256] = {
    /*   0 */ 32768, 33451, 34133, 34813, 35493, 36169, 36843, 37513,
    /*   8 */ 38180, 38841, 39498, 40149, 40794, 41432, 42064, 42688,
    /*  16 */ 43304, 43912, 44511, 45102, 45683, 46255, 46817, 47369,
    /*  24 */ 47911, 48443, 48964, 49475, 49975, 50464, 50942, 51409,
    /*  32 */ 51865, 52311, 52745, 53169, 53581, 53983, 54374, 54755,
    /*  40 */ 55125, 55485, 55834, 56174, 56503, 56823, 57133, 57433,
    /*  48 */ 57724, 58007, 58280, 58544, 58800, 59048, 59288, 59519,
    /*  56 */ 59743, 59959, 60168, 60370, 60565, 60753, 60935, 61110,
    /*  64 */ 61279, 61441, 61599, 61750, 61896, 62036, 62172, 62302,
    /*  72 */ 62428, 62549, 62666, 62778, 62886, 62990, 63090, 63186,
    /*  80 */ 63279, 63368, 63454, 63536, 63615, 63691, 63765, 63835,
    /*  88 */ 63903, 63968, 64030, 64090, 64148, 64204, 64257, 64308,
    /*  96 */ 64357, 64405, 64450, 64494, 64536, 64576, 64614, 64652,
    /* 104 */ 64687, 64721, 64754, 64786, 64816, 64845, 64873, 64900,
    /* 112 */ 64926, 64950, 64974, 64997, 65019, 65039, 65060, 65079,
    /* 120 */ 65097, 65115, 65132, 65149, 65164, 65179, 65194, 65208,
    /* 128 */ 65221, 65234, 65246, 65258, 65269, 65280, 65291, 65301,
    /* 136 */ 65310, 65319, 65328, 65337, 65345, 65352, 65360, 65367,
    /* 144 */ 65374, 65381, 65387, 65393, 65399, 65404, 65410, 65415,
    /* 152 */ 65420, 65425, 65429, 65433, 65438, 65442, 65445, 65449,
    /* 160 */ 65453, 65456, 65459, 65462, 65465, 65468, 65471, 65474,
    /* 168 */ 65476, 65479, 65481, 65483, 65485, 65488, 65489, 65491,
    /* 176 */ 65493, 65495, 65497, 65498, 65500, 65501, 65503, 65504,
    /* 184 */ 65505, 65507, 65508, 65509, 65510, 65511, 65512, 65513,
    /* 192 */ 65514, 65515, 65516, 65517, 65517, 65518, 65519, 65520,
    /* 200 */ 65520, 65521, 65522, 65522, 65523, 65523, 65524, 65524,
    /* 208 */ 65525, 65525, 65526, 65526, 65526, 65527, 65527, 65528,
    /* 216 */ 65528, 65528, 65529, 65529, 65529, 65529, 65530, 65530,
    /* 224 */ 65530, 65530, 65531, 65531, 65531, 65531, 65531, 65532,
    /* 232 */ 65532, 65532, 65532, 65532, 65532, 65533, 65533, 65533,
    /* 240 */ 65533, 65533, 65533, 65533, 65533, 65534, 65534, 65534,
    /* 248 */ 65534, 65534, 65534, 65534, 65534, 65534, 65534, 65535
};

static int16_t sat16(int32_t x)
{
    return (int16_t)te_clamp_s32(x, TE_INT16_MIN, TE_INT16_MAX);
}

/* reference_integer_ops::Logistic, int16, with TFLM's LSTM parameters
 * (input_multiplier 0, input_left_shift 0: the "power of two" case, which
 * multiplies by 3). x in Q3.12; x * 3 in steps of 2^9 indexes the table
 * (1/24 apart), the low 9 bits interpolate. Result Q0.15 in [0, 32767]. */
int16_t te_lstm_sigmoid16(int16_t x)
{
    const int32_t v = (int32_t)x * 3;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t k = a >> 9;
    uint32_t r;
    if (k >= 255) {
        r = (uint32_t)0x7FFF << 10;
    } else {
        const uint32_t lo = sigmoid_table[k];
        const uint32_t hi = sigmoid_table[k + 1];
        r = (lo << 9) + (a & 0x1FFu) * (hi - lo);
    }
    /* sigmoid(-x) = 1 - sigmoid(x), in Q0.25 before the final shift */
    r = v >= 0 ? r + (1u << 9) : (1u << 25) - r + (1u << 9) - 1u;
    return (int16_t)(r >> 10);
}

/* reference_integer_ops::Tanh, int16: the input rescaled to Q3.12 times 3 by
 * (x * mult + round) >> shift, then in steps of 2^8 (tanh needs sigmoid at
 * twice the argument) the table, the low 8 bits interpolating. Result Q0.15
 * in [-32767, 32767]. The host keeps x * mult within int32. */
int16_t te_lstm_tanh16(int16_t x, int32_t mult, int32_t shift)
{
    const int32_t round = shift > 0 ? (int32_t)1 << (shift - 1) : 0;
    const int32_t v = ((int32_t)x * mult + round) >> shift;
    const uint32_t a = (uint32_t)(v < 0 ? -v : v);
    const uint32_t k = a >> 8;
    int32_t r;
    if (k >= 255) {
        r = (int32_t)0xFFFF << 8;
    } else {
        const uint32_t lo = sigmoid_table[k];
        const uint32_t hi = sigmoid_table[k + 1];
        r = (int32_t)((lo << 8) + (a & 0xFFu) * (hi - lo));
    }
    /* 2 * sigmoid - 1, negated for negative inputs, in Q0.23 before the shift */
    r = v >= 0 ? r - (1 << 23) + (1 << 7) : -r + (1 << 23) + (1 << 7) - 1;
    return (int16_t)(r >> 8);
}

/* int32 addition that wraps (the folded biases: see the top of the file). */
static int32_t add_wrap(int32_t a, int32_t b)
{
    return (int32_t)((uint32_t)a + (uint32_t)b);
}

static int32_t dot_s8(const int8_t *a, const int8_t *b, int32_t n)
{
    int32_t acc = 0;
    int32_t k;
    for (k = 0; k < n; ++k) {
        acc += (int32_t)a[k] * (int32_t)b[k];
    }
    return acc;
}

/* CalculateLstmGate up to the activation: the input and the recurrent fully
 * connected layers (reference_integer_ops::FullyConnected, int16 output,
 * clamped to int16) and their saturating sum (lstm_internal::AddElementWise). */
static void gate_preactivation(const te_lstm_params_t *p, int32_t g, const int8_t *x, const int8_t *h,
                               int16_t *gate)
{
    const int8_t *w_in = p->w_in[g];
    const int8_t *w_rec = p->w_rec[g];
    int32_t r;
    for (r = 0; r < p->n_cell; ++r) {
        const int32_t acc_in = add_wrap(p->b_in[g][r], dot_s8(x, w_in + r * p->n_input, p->n_input));
        const int32_t acc_rec = add_wrap(p->b_rec[g][r], dot_s8(h, w_rec + r * p->n_cell, p->n_cell));
        const int16_t from_input = sat16(te_mul_by_quantized_mult(acc_in, p->in_mult[g], p->in_shift[g]));
        const int16_t from_state = sat16(te_mul_by_quantized_mult(acc_rec, p->rec_mult[g], p->rec_shift[g]));
        gate[r] = sat16((int32_t)from_input + from_state);
    }
}

/* lstm_internal::LstmStep for one batch row; h and c are updated in place. */
static void lstm_step(const te_lstm_params_t *p, const int8_t *x, int8_t *h, int16_t *c, int16_t *scratch)
{
    const int32_t n = p->n_cell;
    int16_t *ig = scratch;
    int16_t *fg = scratch + n;
    int16_t *cg = scratch + 2 * n;
    int16_t *og = scratch + 3 * n;
    int32_t r;

    /* every gate reads the hidden state of the previous step */
    gate_preactivation(p, TE_LSTM_INPUT_GATE, x, h, ig);
    gate_preactivation(p, TE_LSTM_FORGET_GATE, x, h, fg);
    gate_preactivation(p, TE_LSTM_CELL_GATE, x, h, cg);
    gate_preactivation(p, TE_LSTM_OUTPUT_GATE, x, h, og);
    for (r = 0; r < n; ++r) {
        ig[r] = te_lstm_sigmoid16(ig[r]);
        fg[r] = te_lstm_sigmoid16(fg[r]);
        cg[r] = te_lstm_tanh16(cg[r], 3, 0); /* lstm_internal::Tanh with cell_state_scale_power -12 */
        og[r] = te_lstm_sigmoid16(og[r]);
    }
    for (r = 0; r < n; ++r) {
        /* UpdateLstmCell: two MulElementwise (int16, clamped), AddElementWise, Clipping */
        const int32_t kept = te_mul_by_quantized_mult((int32_t)fg[r] * c[r], p->forget_mult, p->forget_shift);
        const int32_t added = te_mul_by_quantized_mult((int32_t)ig[r] * cg[r], p->input_mult, p->input_shift);
        int32_t v = sat16((int32_t)sat16(kept) + sat16(added));
        if (p->cell_clip >= 0) {
            v = te_clamp_s32(v, -p->cell_clip, p->cell_clip);
        }
        c[r] = (int16_t)v;
    }
    for (r = 0; r < n; ++r) {
        /* UpdateLstmHidden: Tanh of the cell, MulElementwise (int16 x int16 -> int8) */
        const int32_t t = te_lstm_tanh16(c[r], p->tanh_mult, p->tanh_shift);
        const int32_t v = te_mul_by_quantized_mult(t * og[r], p->hidden_mult, p->hidden_shift) + p->hidden_zp;
        h[r] = te_sat_s8(v);
    }
}

/* EvalLstm: time-major inputs run one step for all batch rows at a time,
 * batch-major ones the whole sequence of one row after the other; the rows
 * never mix, so one loop order serves both layouts. */
void te_lstm_s8(const te_lstm_params_t *p, const int8_t *input, int8_t *output,
                int8_t *output_state, int16_t *cell_state, int16_t *scratch)
{
    const int32_t n = p->n_cell;
    int32_t t, b, r;
    for (t = 0; t < p->n_steps; ++t) {
        for (b = 0; b < p->n_batch; ++b) {
            const int32_t row = p->time_major ? t * p->n_batch + b : b * p->n_steps + t;
            int8_t *h = output_state + b * n;
            int8_t *out = output + row * n;
            lstm_step(p, input + row * p->n_input, h, cell_state + b * n, scratch);
            for (r = 0; r < n; ++r) {
                out[r] = h[r];
            }
        }
    }
}
