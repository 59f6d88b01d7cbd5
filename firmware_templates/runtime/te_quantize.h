/*
 * te_quantize.h - QUANTIZE (float32 -> int8/int16; int8 -> int8, uint8 -> int8,
 * int8 -> uint8, int8 -> int16, int16 -> int8, int16 -> int16 requantize) and
 * DEQUANTIZE (int8/uint8/int16 -> float32).
 * Plain C99, no malloc; compiles for the host and for Cortex-M.
 */
#ifndef TE_QUANTIZE_H
#define TE_QUANTIZE_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

typedef struct {
    int32_t size;        /* number of elements */
    float scale;         /* output scale */
    int32_t zero_point;  /* output zero point */
} te_quantize_params_t;

typedef struct {
    int32_t size;
    float scale;         /* input scale */
    int32_t zero_point;  /* input zero point */
} te_dequantize_params_t;

typedef struct {
    int32_t size;
    int32_t in_zp, out_zp;
    int32_t mult, shift; /* QuantizeMultiplier(double(in_scale) / double(out_scale)) */
} te_requantize_params_t;

void te_quantize_f32_s8(const te_quantize_params_t *p, const float *in, int8_t *out);
void te_quantize_f32_s16(const te_quantize_params_t *p, const float *in, int16_t *out);
void te_dequantize_s8_f32(const te_dequantize_params_t *p, const int8_t *in, float *out);
void te_dequantize_u8_f32(const te_dequantize_params_t *p, const uint8_t *in, float *out);
void te_dequantize_s16_f32(const te_dequantize_params_t *p, const int16_t *in, float *out);
void te_requantize_s8_s8(const te_requantize_params_t *p, const int8_t *in, int8_t *out);
void te_requantize_u8_s8(const te_requantize_params_t *p, const uint8_t *in, int8_t *out);
void te_requantize_s8_u8(const te_requantize_params_t *p, const int8_t *in, uint8_t *out);
void te_requantize_s8_s16(const te_requantize_params_t *p, const int8_t *in, int16_t *out);
void te_requantize_s16_s8(const te_requantize_params_t *p, const int16_t *in, int8_t *out);
void te_requantize_s16_s16(const te_requantize_params_t *p, const int16_t *in, int16_t *out);

#ifdef __cplusplus
}
#endif

#endif /* TE_QUANTIZE_H */
