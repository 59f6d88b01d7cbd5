/*
 * te_protocol.h - device side of the tinyedge serial protocol (docs/protocol.md).
 *
 * A frame on the wire is COBS(cmd | seq | payload | crc32) followed by 0x00.
 *   cmd      u8       request code, or the response/event code
 *   seq      u16 LE   chosen by the host; a response echoes its request's
 *   payload  0..TE_PROTO_MAX_PAYLOAD bytes
 *   crc32    u32 LE   CRC-32 (IEEE 802.3, as zlib.crc32) of cmd..payload
 * All multi-byte fields are little-endian. Pure C99, no I/O: the same code
 * compiles for the host in the protocol tests.
 */
#ifndef TE_PROTOCOL_H
#define TE_PROTOCOL_H

#include <stddef.h>
#include <stdint.h>

#define TE_PROTO_VERSION 3u /* 3: model name in HELLO */

#ifndef TE_PROTO_MAX_PAYLOAD
#define TE_PROTO_MAX_PAYLOAD 256u
#endif

#define TE_FRAME_HEADER 3u  /* cmd + seq */
#define TE_FRAME_CRC 4u
#define TE_FRAME_OVERHEAD (TE_FRAME_HEADER + TE_FRAME_CRC)
#define TE_FRAME_MAX_RAW (TE_FRAME_OVERHEAD + TE_PROTO_MAX_PAYLOAD)
/* COBS adds one code byte per started 254-byte block, plus one. */
#define TE_COBS_MAX(n) ((n) + (n) / 254u + 1u)
#define TE_FRAME_MAX_WIRE TE_COBS_MAX(TE_FRAME_MAX_RAW)

/* Requests (host -> device). A response uses the request code | 0x80. */
enum {
    TE_CMD_HELLO = 0x01,       /* -> board, core, clock, versions, model hash and name, counts */
    TE_CMD_TENSOR_INFO = 0x02, /* u8 kind (0 in, 1 out), u8 index -> tensor spec */
    TE_CMD_WRITE = 0x03,       /* u8 input, u32 offset, data -> status */
    TE_CMD_RUN = 0x04,         /* -> u64 ticks, u32 cycles */
    TE_CMD_READ = 0x05,        /* u8 output, u32 offset, u16 length -> data */
    TE_CMD_CALIBRATE = 0x06,   /* u32 iterations -> u64 ticks, u32 cycles */
    TE_CMD_ECHO = 0x07,        /* data -> the same data */
    TE_CMD_RUN_UNTIL = 0x08,   /* u16 last_op -> u64 ticks, u32 cycles (ops 0..last_op) */
    TE_CMD_OP_INFO = 0x09,     /* u16 entry -> u16 op, u8 output, u32 bytes */
    TE_CMD_READ_OP = 0x0A      /* u16 entry, u32 offset, u16 length -> data */
};

#define TE_RSP_FLAG 0x80u

/* Unsolicited device messages (seq 0). */
enum {
    TE_MSG_NACK = 0xFE,  /* u8 status: a frame arrived that could not be read */
    TE_MSG_FAULT = 0xFF  /* text: the firmware crashed; it has stopped */
};

/* First payload byte of every response. */
enum {
    TE_OK = 0,
    TE_ERR_UNKNOWN_CMD = 1,
    TE_ERR_BAD_LENGTH = 2,   /* request payload has the wrong size */
    TE_ERR_BAD_INDEX = 3,    /* no such tensor */
    TE_ERR_OUT_OF_RANGE = 4, /* offset/length outside the tensor */
    TE_ERR_BAD_FRAME = 5,    /* NACK: COBS or CRC error, or too short */
    TE_ERR_TOO_LONG = 6      /* NACK: frame longer than the device buffer */
};

/* CRC-32/IEEE: te_crc32(p, n) == zlib.crc32(p) for any bytes. */
uint32_t te_crc32(const uint8_t *data, size_t len);

/* COBS-encode src (no trailing 0x00) into dst. Returns the encoded length,
 * or 0 if dst is too small. */
size_t te_cobs_encode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/* COBS-decode src (without the 0x00 delimiter) into dst; dst may equal src.
 * Returns the decoded length, or (size_t)-1 if src is not valid COBS or dst
 * is too small. */
size_t te_cobs_decode(const uint8_t *src, size_t len, uint8_t *dst, size_t cap);

/* Finish the raw frame in buf: buf[0..2] = cmd, seq; the payload is already
 * at buf + TE_FRAME_HEADER; appends the CRC. Returns the raw frame length.
 * buf must hold payload_len + TE_FRAME_OVERHEAD bytes. */
size_t te_frame_finish(uint8_t *buf, uint8_t cmd, uint16_t seq, size_t payload_len);

/* Check a decoded raw frame: length and CRC. On success returns the payload
 * length and sets *cmd and *seq; returns (size_t)-1 on error. */
size_t te_frame_check(const uint8_t *raw, size_t len, uint8_t *cmd, uint16_t *seq);

/* Little-endian field helpers. */
void te_put_u16(uint8_t *p, uint16_t v);
void te_put_u32(uint8_t *p, uint32_t v);
void te_put_u64(uint8_t *p, uint64_t v);
uint16_t te_get_u16(const uint8_t *p);
uint32_t te_get_u32(const uint8_t *p);

#endif /* TE_PROTOCOL_H */
