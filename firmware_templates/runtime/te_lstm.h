/*
 * te_lstm.h - int8 UNIDIRECTIONAL_SEQUENCE_LSTM as TensorFlow Lite Micro
 * computes it (kernels/unidirectional_sequence_lstm.cc, lstm_eval.h/.cc,
 * lstm_eval_common.cc; the "8x8 -> 16" case: int8 input, weights and hidden
 * state, int32 biases, int16 gates and int16 cell state). No CIFG, peephole,
 * projection or layer normalization: TFLM refuses those.
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_LSTM_H
#define TE_LSTM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Gate order of every per-gate array. */
enum { TE_LSTM_INPUT_GATE = 0, TE_LSTM_FORGET_GATE = 1, TE_LSTM_CELL_GATE = 2, TE_LSTM_OUTPUT_GATE = 3 };

/* Every field is computed on the host (tinyedge/ops/lstm.py). Multipliers are
 * Q31 with a TFLite exponent (> 0 left shift), applied with
 * tflite::MultiplyByQuantizedMultiplier (double rounding). */
typedef struct {
    int32_t n_batch;
    int32_t n_steps;                   /* sequence length */
    int32_t n_input;                   /* features per step */
    int32_t n_cell;                    /* units; also the output width (no projection) */
    int32_t time_major;                /* 1: input/output [steps][batch][.]; 0: [batch][steps][.] */
    const int8_t *w_in[4];             /* input weights, [n_cell][n_input] per gate */
    const int8_t *w_rec[4];            /* recurrent weights, [n_cell][n_cell] per gate */
    const int32_t *b_in[4];            /* gate bias - input_zp * row sums of w_in */
    const int32_t *b_rec[4];           /* -output_state_zp * row sums of w_rec */
    int32_t in_mult[4], in_shift[4];   /* input x weights -> gate, Q3.12 */
    int32_t rec_mult[4], rec_shift[4]; /* output state x weights -> gate, Q3.12 */
    int32_t forget_mult, forget_shift; /* forget gate (Q0.15) x cell -> cell */
    int32_t input_mult, input_shift;   /* input gate (Q0.15) x cell gate (Q0.15) -> cell */
    int32_t tanh_mult, tanh_shift;     /* cell -> the int16 tanh's input: (c * mult + round) >> shift */
    int32_t cell_clip;                 /* quantized cell clip; < 0: no clipping */
    int32_t hidden_mult, hidden_shift; /* tanh(cell) (Q0.15) x output gate (Q0.15) -> hidden int8 */
    int32_t hidden_zp;                 /* zero point of the output state (the hidden state) */
} te_lstm_params_t;

/* Runs the whole sequence. output_state (int8, [n_batch][n_cell]) and
 * cell_state (int16, [n_batch][n_cell]) are read as the initial state and
 * hold the final state on return: TFLM keeps them in variable tensors that
 * persist from one inference to the next until the interpreter's reset().
 * scratch: 4 * n_cell int16. */
void te_lstm_s8(const te_lstm_params_t *p, const int8_t *input, int8_t *output,
                int8_t *output_state, int16_t *cell_state, int16_t *scratch);

/* TFLM's int16 logistic and tanh (reference_integer_ops::Logistic / Tanh,
 * int16 overloads), exposed for the tests. Logistic: input Q3.12, output
 * Q0.15. Tanh: the input is first rescaled as (x * mult + round) >> shift
 * (round = 2^(shift-1) when shift > 0), to Q3.12 times 3; output Q0.15. */
int16_t te_lstm_sigmoid16(int16_t x);
int16_t te_lstm_tanh16(int16_t x, int32_t mult, int32_t shift);

#ifdef __cplusplus
}
#endif

#endif /* TE_LSTM_H */
