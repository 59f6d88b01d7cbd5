/*
 * te_blocked.c (arm_mve) - the blocked-layout kernels of te_blocked.h with
 * Helium (Cortex-M55): the same functions, constants and results as the
 * portable runtime/te_blocked.c, which is the reference for what is computed.
 *
 * FULLY_CONNECTED, CONV_2D: per input row / output pixel, each block of 4
 * weight rows is one pass over the input vector -- one 16-byte load of x and
 * four of weights feed four VMLADAVA.S8 (64 MACs), in a tail-predicated
 * low-overhead loop (te_mve.h) -- then 4 lanes of requantization and a 4-byte
 * store. CONV_2D gathers each output pixel's receptive field first (im2col:
 * k_h runs of k_w * in_c contiguous bytes when the window lies inside the
 * input, zero points for padding taps), except for 1x1 kernels without padding,
 * whose patch is the input pixel itself.
 *
 * DEPTHWISE_CONV_2D: 16 output bytes at a time (te_blocked.h, "blocks of 16
 * lanes"). Input rows are first copied into a ring of rows in scratch whose
 * padding columns hold the input zero point, and rows above or below the
 * input read a row of zero points, so every tap of every output pixel is a
 * plain 16-byte load -- no bounds checks in the inner loop. See dw_block for
 * the arithmetic.
 */
#include "te_blocked.h"

#include <arm_mve.h>
#include <stddef.h>

#include "te_common.h"
#include "te_mve.h"

/* ---------------------------------------------------------------- FULLY_CONNECTED */

void te_fully_connected_blocked_s8(const te_fc_blocked_params_t *p, const int8_t *input,
                                   const int8_t *filter, const int32_t *rq, int8_t *output)
{
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t b;
    for (b = 0; b < p->batches; ++b) {
        te_mve_gemv(input + (size_t)b * (size_t)p->in_depth, p->in_depth, filter, rq, p->out_depth,
                    output + (size_t)b * (size_t)p->out_depth, p->output_offset, lo, hi);
    }
}

/* ---------------------------------------------------------------- CONV_2D */

/* The receptive field of output pixel (oy, ox) in filter order [k_h][k_w][in_c];
 * padding taps hold the input zero point (folded out by the bias). */
static void cv_patch(const te_conv2d_blocked_params_t *p, const int8_t *image, int32_t oy, int32_t ox,
                     int8_t *patch)
{
    const int32_t in_c = p->win.in_c;
    const int32_t iy0 = oy * p->win.stride_h - p->win.pad_top;
    const int32_t ix0 = ox * p->win.stride_w - p->win.pad_left;
    const int32_t run = p->win.k_w * in_c;
    const size_t in_row = (size_t)p->win.in_w * (size_t)in_c;
    const int8_t pad = (int8_t)p->input_zero_point;
    int32_t ky, kx;
    if (p->win.dil_w == 1 && ix0 >= 0 && ix0 + p->win.k_w <= p->win.in_w && iy0 >= 0 &&
        iy0 + (p->win.k_h - 1) * p->win.dil_h < p->win.in_h) {
        /* the whole window inside: k_h contiguous runs */
        const int8_t *src = image + (size_t)iy0 * in_row + (size_t)ix0 * (size_t)in_c;
        const size_t step = (size_t)p->win.dil_h * in_row;
        for (ky = 0; ky < p->win.k_h; ++ky, patch += run, src += step) {
            te_mve_copy(patch, src, run);
        }
        return;
    }
    for (ky = 0; ky < p->win.k_h; ++ky, patch += run) {
        const int32_t iy = iy0 + ky * p->win.dil_h;
        const int8_t *src = image + (size_t)iy * in_row;
        if (iy < 0 || iy >= p->win.in_h) {
            te_mve_fill(patch, pad, run);
            continue;
        }
        for (kx = 0; kx < p->win.k_w; ++kx) {
            const int32_t ix = ix0 + kx * p->win.dil_w;
            if (ix < 0 || ix >= p->win.in_w) {
                te_mve_fill(patch + kx * in_c, pad, in_c);
            } else {
                te_mve_copy(patch + kx * in_c, src + (size_t)ix * (size_t)in_c, in_c);
            }
        }
    }
}

/* acc[2r + p] = bias[r] + x_p . W[r] for the 4 rows r of one block of packed
 * weights and 2 pixels p, over n bytes: each 16-byte load of weights feeds
 * both pixels (8 VMLADAVA per chunk of 16: 128 MACs in 16 instructions). All 8
 * accumulators live in the even registers VMLADAVA needs (lr included), so the
 * loop counts in r11 instead of a low-overhead loop; the last chunk of a depth
 * that is not a multiple of 16 loads x predicated (zeros past n; the weights
 * are zero there, te_blocked.h). A function of its own (naked: the body saves
 * what it uses), called as (x0, x1, w, n, bias, acc). */
#define TE_IN_ASM __attribute__((unused)) /* a naked function's arguments are read by its asm */
__attribute__((naked, noinline)) static void cv_dot2x4(TE_IN_ASM const int8_t *x0, TE_IN_ASM const int8_t *x1,
                                                       TE_IN_ASM const int8_t *w, TE_IN_ASM int32_t n,
                                                       TE_IN_ASM const int32_t *bias, TE_IN_ASM int32_t *acc)
{
#define TE_CV_CHUNK                          \
    "   vldrb.8     q2, [r9], #16\n"        \
    "   vmladava.s8 r0, q0, q2\n"           \
    "   vmladava.s8 r2, q1, q2\n"           \
    "   vldrb.8     q3, [r9], #16\n"        \
    "   vmladava.s8 r4, q0, q3\n"           \
    "   vmladava.s8 r6, q1, q3\n"           \
    "   vldrb.8     q2, [r9], #16\n"        \
    "   vmladava.s8 r8, q0, q2\n"           \
    "   vmladava.s8 r10, q1, q2\n"          \
    "   vldrb.8     q3, [r9], #16\n"        \
    "   vmladava.s8 r12, q0, q3\n"          \
    "   vmladava.s8 lr, q1, q3\n"
    __asm__ volatile(
        "   push        {r4-r11, lr}\n"         /* the stacked arguments now start at sp + 36 */
        "   mov         r5, r0\n"               /* x0 */
        "   mov         r7, r1\n"               /* x1 */
        "   mov         r9, r2\n"               /* w */
        "   mov         r1, r3\n"               /* n */
        "   ldr         r3, [sp, #36]\n"        /* bias */
        "   ldrd        r0, r4, [r3]\n"
        "   ldrd        r8, r12, [r3, #8]\n"
        "   mov         r2, r0\n"
        "   mov         r6, r4\n"
        "   mov         r10, r8\n"
        "   mov         lr, r12\n"
        "   asrs        r11, r1, #4\n"          /* whole chunks */
        "   beq         2f\n"
        "1: vldrb.8     q0, [r5], #16\n"
        "   vldrb.8     q1, [r7], #16\n"
        TE_CV_CHUNK
        "   subs        r11, #1\n"
        "   bne         1b\n"
        "2: ands        r1, r1, #15\n"          /* bytes in a last, partial chunk */
        "   beq         3f\n"
        "   vctp.8      r1\n"
        "   vpstt\n"
        "   vldrbt.8    q0, [r5]\n"
        "   vldrbt.8    q1, [r7]\n"
        TE_CV_CHUNK
        "3: ldr         r3, [sp, #40]\n"        /* acc */
        "   stm         r3, {r0, r2, r4, r6, r8, r10, r12, lr}\n"
        "   pop         {r4-r11, pc}\n");
#undef TE_CV_CHUNK
}
#undef TE_IN_ASM

/* Two output pixels' channels at once (patches x0, x1 of depth bytes): per
 * block of 4 rows, cv_dot2x4, then the requantization constants loaded once
 * for both pixels. */
static void cv_gemv2(const int8_t *x0, const int8_t *x1, int32_t depth, const int8_t *w, const int32_t *rq,
                     int32_t n_out, int8_t *out0, int8_t *out1, int32_t out_off, int32x4_t lo, int32x4_t hi)
{
    const size_t block_bytes = (size_t)(depth + TE_BLOCK_CHUNK - 1) / TE_BLOCK_CHUNK * TE_BLOCK_CHUNK * TE_BLOCK_ROWS;
    int32_t acc[8] __attribute__((aligned(16)));
    int32_t o;
    for (o = 0; o < n_out; o += TE_BLOCK_ROWS, w += block_bytes, rq += TE_RQ4_WORDS) {
        int32x4x2_t a;
        cv_dot2x4(x0, x1, w, depth, rq + TE_RQ4_BIAS, acc);
        a = vld2q_s32(acc); /* even entries: pixel 0's 4 rows; odd: pixel 1's */
        te_mve_requant2(&a.val[0], &a.val[1], rq, out_off, lo, hi);
        if (n_out - o >= TE_BLOCK_ROWS) {
            vstrbq_s32(out0 + o, a.val[0]);
            vstrbq_s32(out1 + o, a.val[1]);
        } else {
            const mve_pred16_t pred = vctp32q((uint32_t)(n_out - o));
            vstrbq_p_s32(out0 + o, a.val[0], pred);
            vstrbq_p_s32(out1 + o, a.val[1], pred);
        }
    }
}

/* Where output pixel `pix` (raster order within the image) reads its patch:
 * the input pixel itself (1x1 without padding) or `buf`, gathered. */
static const int8_t *cv_patch_of(const te_conv2d_blocked_params_t *p, const int8_t *image, int32_t pix,
                                 int8_t *buf)
{
    const int32_t oy = pix / p->win.out_w, ox = pix % p->win.out_w;
    if (p->direct) {
        return image + ((size_t)(oy * p->win.stride_h) * (size_t)p->win.in_w + (size_t)(ox * p->win.stride_w)) *
                           (size_t)p->win.in_c;
    }
    cv_patch(p, image, oy, ox, buf);
    return buf;
}

void te_conv2d_blocked_s8(const te_conv2d_blocked_params_t *p, const int8_t *input,
                          const int8_t *filter, const int32_t *rq, int8_t *output, int8_t *scratch)
{
    const int32_t depth = p->win.k_h * p->win.k_w * p->win.in_c;
    const int32_t pixels = p->win.out_h * p->win.out_w;
    const size_t in_image = (size_t)p->win.in_h * (size_t)p->win.in_w * (size_t)p->win.in_c;
    const int32x4_t lo = vdupq_n_s32(p->act_min), hi = vdupq_n_s32(p->act_max);
    int32_t b, pix;
    for (b = 0; b < p->win.batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        /* two pixels per pass pay off once the depth outweighs the per-block overhead (measured:
         * 64 bytes run faster one pixel at a time, 144 two at a time) */
        for (pix = 0; depth > 4 * TE_BLOCK_CHUNK && pix + 2 <= pixels; pix += 2, output += 2 * p->out_c) {
            cv_gemv2(cv_patch_of(p, image, pix, scratch), cv_patch_of(p, image, pix + 1, scratch + depth), depth,
                     filter, rq, p->out_c, output, output + p->out_c, p->output_offset, lo, hi);
        }
        for (; pix < pixels; ++pix, output += p->out_c) {
            te_mve_gemv(cv_patch_of(p, image, pix, scratch), depth, filter, rq, p->out_c, output,
                        p->output_offset, lo, hi);
        }
    }
}

/* ---------------------------------------------------------------- DEPTHWISE_CONV_2D */

/* What dw_block reads besides the data (an asm operand each would be too many). */
typedef struct {
    int32_t pairs, singles; /* tap counts: added two by two in int16, one by one */
    int32_t out_off, act_min, act_max;
} dw_consts_t;

/* One block of 16 lanes, from bias to stored bytes (n <= 16 of them kept).
 *
 * Taps: lane l of tap t reads x = (tap[t] + xoff)[l] and the t-th 16 weights
 * at w. VMULLB.S8 / VMULLT.S8 multiply the even / odd lanes into int16, and
 * VMOVLB / VMOVLT widen those into the four int32 accumulators:
 *   a0 = lanes 0,4,8,12   a1 = 2,6,10,14   a2 = 1,5,9,13   a3 = 3,7,11,15,
 * the lane order of te_blocked.h's rq entries 4g + s. For the first `pairs` pairs of
 * taps the int16 products of both are added before widening (pair_taps: no
 * channel has -128 at both taps of a pair, so the sum fits). The second tap of a pair
 * reloads its x rather than hold it (8 vector registers: 4 accumulators and
 * 4 temporaries); VMULLB/T.S8 may write a source register (only the 32-bit
 * forms may not).
 *
 * Requantization of each accumulator as te_mve_requant (te_mve.h), then the
 * saturating narrowings VQMOVNB/VQMOVNT put the lanes back in order -- a0/a1
 * interleave into the even channels, a2/a3 into the odd ones (int16), those two
 * into 16 bytes (int8) -- clamping to [-128, 127] on the way, which is inside
 * TFLM's int32 clamp to [act_min, act_max]; the activation range follows in
 * int8 lanes. */
static inline __attribute__((always_inline)) void dw_block(const int8_t *const *tap, int32_t xoff,
                                                           const int8_t *w, const dw_consts_t *k,
                                                           const int32_t *rq, int8_t *out, int32_t n)
{
    int32x4_t a0, a1, a2, a3, t0, t1, t2, t3;
    const int8_t *ra, *rb;
/* a0..a3 += the even (t2) and odd (t3) lanes' int16 products, widened */
#define TE_DW_WIDEN                               \
        "   vmovlb.s16  %q[t0], %q[t2]\n"         \
        "   vadd.i32    %q[a0], %q[a0], %q[t0]\n" \
        "   vmovlt.s16  %q[t0], %q[t2]\n"         \
        "   vadd.i32    %q[a1], %q[a1], %q[t0]\n" \
        "   vmovlb.s16  %q[t0], %q[t3]\n"         \
        "   vadd.i32    %q[a2], %q[a2], %q[t0]\n" \
        "   vmovlt.s16  %q[t0], %q[t3]\n"         \
        "   vadd.i32    %q[a3], %q[a3], %q[t0]\n"
    __asm__ volatile(
        "   vldrw.u32   %q[a0], [%[rq]]\n"
        "   vldrw.u32   %q[a1], [%[rq], #64]\n"
        "   vldrw.u32   %q[a2], [%[rq], #128]\n"
        "   vldrw.u32   %q[a3], [%[rq], #192]\n"
        "   ldr         %[ra], [%[k]]\n"
        "   wls         lr, %[ra], 1f\n"
        "2: ldrd        %[ra], %[rb], [%[tap]], #8\n"
        "   add         %[ra], %[xoff]\n"
        "   add         %[rb], %[xoff]\n"
        "   vldrb.8     %q[t0], [%[ra]]\n"
        "   vldrb.8     %q[t1], [%[w]], #16\n"
        "   vmullb.s8   %q[t2], %q[t0], %q[t1]\n"
        "   vmullt.s8   %q[t3], %q[t0], %q[t1]\n"
        "   vldrb.8     %q[t0], [%[rb]]\n"
        "   vldrb.8     %q[t1], [%[w]], #16\n"
        "   vmullb.s8   %q[t0], %q[t0], %q[t1]\n"
        "   vadd.i16    %q[t2], %q[t2], %q[t0]\n"
        "   vldrb.8     %q[t0], [%[rb]]\n"
        "   vmullt.s8   %q[t0], %q[t0], %q[t1]\n"
        "   vadd.i16    %q[t3], %q[t3], %q[t0]\n"
        TE_DW_WIDEN
        "   le          lr, 2b\n"
        "1: ldr         %[ra], [%[k], #4]\n"
        "   wls         lr, %[ra], 3f\n"
        "4: ldr         %[ra], [%[tap]], #4\n"
        "   add         %[ra], %[xoff]\n"
        "   vldrb.8     %q[t0], [%[ra]]\n"
        "   vldrb.8     %q[t1], [%[w]], #16\n"
        "   vmullb.s8   %q[t2], %q[t0], %q[t1]\n"
        "   vmullt.s8   %q[t3], %q[t0], %q[t1]\n"
        TE_DW_WIDEN
        "   le          lr, 4b\n"
        "3: ldr         %[rb], [%[k], #8]\n"
/* accumulator A, its rq entry at rq + OFS bytes: mult at +16, left at +32, right at +48 */
#define TE_DW_REQUANT(A, OFS)                                  \
        "   vldrw.u32   %q[t0], [%[rq], #" #OFS "+16]\n"      \
        "   vldrw.u32   %q[t1], [%[rq], #" #OFS "+32]\n"      \
        "   vshl.s32    %q[" A "], %q[" A "], %q[t1]\n"        \
        "   vqrdmulh.s32 %q[" A "], %q[" A "], %q[t0]\n"       \
        "   vldrw.u32   %q[t1], [%[rq], #" #OFS "+48]\n"      \
        "   vand        %q[t0], %q[" A "], %q[t1]\n"           \
        "   vshr.s32    %q[t0], %q[t0], #31\n"                 \
        "   vqadd.s32   %q[" A "], %q[" A "], %q[t0]\n"        \
        "   vrshl.s32   %q[" A "], %q[" A "], %q[t1]\n"        \
        "   vadd.i32    %q[" A "], %q[" A "], %[rb]\n"
        TE_DW_REQUANT("a0", 0)
        TE_DW_REQUANT("a1", 64)
        TE_DW_REQUANT("a2", 128)
        TE_DW_REQUANT("a3", 192)
#undef TE_DW_REQUANT
#undef TE_DW_WIDEN
        "   vqmovnb.s32 %q[t2], %q[a0]\n"
        "   vqmovnt.s32 %q[t2], %q[a1]\n"
        "   vqmovnb.s32 %q[t3], %q[a2]\n"
        "   vqmovnt.s32 %q[t3], %q[a3]\n"
        "   vqmovnb.s16 %q[a0], %q[t2]\n"
        "   vqmovnt.s16 %q[a0], %q[t3]\n"
        "   ldrd        %[ra], %[rb], [%[k], #12]\n"
        "   vdup.8      %q[t0], %[ra]\n"
        "   vmax.s8     %q[a0], %q[a0], %q[t0]\n"
        "   vdup.8      %q[t0], %[rb]\n"
        "   vmin.s8     %q[a0], %q[a0], %q[t0]\n"
        "   vctp.8      %[n]\n"
        "   vpst\n"
        "   vstrbt.8    %q[a0], [%[out]]\n"
        : [a0] "=&w"(a0), [a1] "=&w"(a1), [a2] "=&w"(a2), [a3] "=&w"(a3), [t0] "=&w"(t0), [t1] "=&w"(t1),
          [t2] "=&w"(t2), [t3] "=&w"(t3), [tap] "+r"(tap), [w] "+r"(w), [ra] "=&r"(ra), [rb] "=&r"(rb)
        : [xoff] "r"(xoff), [k] "r"(k), [rq] "r"(rq), [out] "r"(out), [n] "r"(n)
        : "lr", "memory");
}

void te_depthwise_blocked_s8(const te_dw_blocked_params_t *p, const int8_t *input,
                             const int8_t *filter, const int32_t *rq, int8_t *output,
                             int8_t *scratch)
{
    const int32_t C = p->win.in_c, in_w = p->win.in_w, in_h = p->win.in_h;
    const int32_t taps = p->win.k_h * p->win.k_w;
    const int32_t span_h = (p->win.k_h - 1) * p->win.dil_h + 1;   /* input rows one output row reads */
    const int32_t row_bytes = p->span_w * C;               /* one zero-point-padded row */
    const int32_t copy_w = TE_MIN(in_w, p->span_w - p->win.pad_left);
    const int32_t blocks = (C + TE_DW_LANES - 1) / TE_DW_LANES;
    const size_t in_image = (size_t)in_h * (size_t)in_w * (size_t)C;
    /* scratch: tap pointers, ring tags, the zero-point row, the ring (te_blocked.h) */
    const int8_t **tap = (const int8_t **)(void *)scratch;
    int32_t *tag = (int32_t *)(void *)(scratch + 8 * taps);
    int8_t *zp_row = scratch + 8 * taps + 8 * ((span_h + 1) / 2);
    int8_t *ring = zp_row + row_bytes;
    dw_consts_t k;
    int32_t b, oy, s;
    k.pairs = p->pair_taps ? taps / 2 : 0;
    k.singles = taps - 2 * k.pairs;
    k.out_off = p->output_offset;
    k.act_min = p->act_min;
    k.act_max = p->act_max;
    te_mve_fill(zp_row, (int8_t)p->input_zero_point, row_bytes * (span_h + 1));
    for (b = 0; b < p->win.batches; ++b) {
        const int8_t *image = input + (size_t)b * in_image;
        for (s = 0; s < span_h; ++s) {
            tag[s] = -1; /* no input row in ring slot s yet */
        }
        for (oy = 0; oy < p->win.out_h; ++oy) {
            const int32_t iy0 = oy * p->win.stride_h - p->win.pad_top;
            int32_t ky, kx, t = 0;
            for (ky = 0; ky < p->win.k_h; ++ky) {
                const int32_t iy = iy0 + ky * p->win.dil_h;
                const int8_t *row = zp_row;
                if (iy >= 0 && iy < in_h) {
                    /* the span_h rows of one output row have distinct slots iy % span_h */
                    s = iy % span_h;
                    row = ring + s * row_bytes;
                    if (tag[s] != iy) {
                        te_mve_copy(ring + s * row_bytes + p->win.pad_left * C,
                                    image + (size_t)iy * (size_t)in_w * (size_t)C, copy_w * C);
                        tag[s] = iy;
                    }
                }
                for (kx = 0; kx < p->win.k_w; ++kx) {
                    tap[t++] = row + kx * p->win.dil_w * C;
                }
            }
            if (p->flat) {
                /* 16 consecutive bytes of the output row; output byte j reads row byte j + tap */
                const int32_t n = p->win.out_w * C;
                int32_t j;
                for (j = 0; j < n; j += TE_DW_LANES) {
                    dw_block(tap, j, filter, &k, rq, output + j, n - j);
                }
                output += n;
            } else {
                const int32_t xstep = p->win.stride_w * C;
                int32_t ox, g;
                for (ox = 0; ox < p->win.out_w; ++ox, output += C) {
                    for (g = 0; g < blocks; ++g) {
                        dw_block(tap, ox * xstep + TE_DW_LANES * g, filter + (size_t)g * (size_t)taps * TE_DW_LANES,
                                 &k, rq + (size_t)(4 * g) * TE_RQ4_WORDS, output + TE_DW_LANES * g, C - TE_DW_LANES * g);
                    }
                }
            }
        }
    }
}
