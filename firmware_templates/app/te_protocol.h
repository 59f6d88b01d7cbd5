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

/* 3: BOOT banner; RUN/RUN_UNTIL carry the inputs' CRC and answer with the
 * outputs' CRC; frames are received and sent without a wire-sized buffer.
 * 4: the model's name in HELLO; RUN/RUN_UNTIL answer with the stack the run
 * used; they time the same code, after restarting SysTick at a fixed phase. */
#define TE_PROTO_VERSION 4u

#ifndef TE_PROTO_MAX_PAYLOAD
#define TE_PROTO_MAX_PAYLOAD 1024u
#endif

#define TE_FRAME_HEADER 3u  /* cmd + seq */
#define TE_FRAME_CRC 4u
#define TE_FRAME_OVERHEAD (TE_FRAME_HEADER + TE_FRAME_CRC)
#define TE_FRAME_MAX_RAW (TE_FRAME_OVERHEAD + TE_PROTO_MAX_PAYLOAD)

/* Requests (host -> device). A response uses the request code | 0x80. */
enum {
    TE_CMD_HELLO = 0x01,       /* -> board, core, clock, versions, model hash and name, counts */
    TE_CMD_TENSOR_INFO = 0x02, /* u8 kind (0 in, 1 out), u8 index -> tensor spec */
    TE_CMD_WRITE = 0x03,       /* u8 input, u32 offset, data -> status */
    TE_CMD_RUN = 0x04,         /* u32 inputs crc -> u64 ticks, u32 cycles, u32 outputs crc,
                                  u32 stack bytes */
    TE_CMD_READ = 0x05,        /* u8 output, u32 offset, u16 length -> data */
    TE_CMD_CALIBRATE = 0x06,   /* u32 iterations -> u64 ticks, u32 cycles */
    TE_CMD_ECHO = 0x07,        /* data -> the same data */
    TE_CMD_RUN_UNTIL = 0x08,   /* u16 last_op, u32 inputs crc -> u64 ticks, u32 cycles,
                                  u32 crc of op last_op's outputs, u32 stack bytes */
    TE_CMD_OP_INFO = 0x09,     /* u16 entry -> u16 op, u8 output, u32 bytes */
    TE_CMD_READ_OP = 0x0A      /* u16 entry, u32 offset, u16 length -> data */
};

#define TE_RSP_FLAG 0x80u

/* Unsolicited device messages (seq 0). */
enum {
    TE_MSG_BOOT = 0xFD,  /* the HELLO answer, sent once at start-up: "I (re)started" */
    TE_MSG_NACK = 0xFE,  /* u8 status: a frame arrived that could not be read */
    TE_MSG_FAULT = 0xFF  /* text: the firmware crashed; it has stopped */
};

/* First payload byte of every response. */
enum {
    TE_OK = 0,
    TE_ERR_UNKNOWN_CMD = 1,
    TE_ERR_BAD_LENGTH = 2,     /* request payload has the wrong size */
    TE_ERR_BAD_INDEX = 3,      /* no such tensor */
    TE_ERR_OUT_OF_RANGE = 4,   /* offset/length outside the tensor */
    TE_ERR_BAD_FRAME = 5,      /* NACK: COBS or CRC error, or too short */
    TE_ERR_TOO_LONG = 6,       /* NACK: frame longer than the device buffer */
    TE_ERR_INPUT_MISMATCH = 7  /* RUN: the inputs held differ from the host's (reset?) */
};

/* CRC-32/IEEE: te_crc32_update(0, p, n) == zlib.crc32(p), and
 * te_crc32_update(te_crc32_update(0, a, n), b, m) == zlib.crc32(a + b). */
uint32_t te_crc32_update(uint32_t crc, const uint8_t *data, size_t len);

/* ---- receiving: COBS decoding and CRC check while the bytes arrive ------ */

/* te_rx_byte() results. */
enum {
    TE_RX_MORE = 0,     /* inside a frame */
    TE_RX_EMPTY = 1,    /* a 0x00 with no frame before it: ignore */
    TE_RX_FRAME = 2,    /* a good frame: rx->len raw bytes in rx->buf, CRC checked */
    TE_RX_BAD = 3,      /* bad COBS, bad CRC or too short */
    TE_RX_TOO_LONG = 4  /* longer than the buffer (the rest was skipped) */
};

typedef struct {
    uint8_t *buf;        /* decoded (raw) frame: cmd, seq, payload, crc */
    size_t cap;
    size_t len;
    uint32_t crc;        /* CRC register over the decoded bytes */
    uint8_t left;        /* data bytes still to come in the current COBS block */
    uint8_t zero_after;  /* the current block ends with an implied 0x00 */
    uint8_t started;     /* a code byte has been seen */
    uint8_t overflow;
} te_rx_t;

void te_rx_init(te_rx_t *rx, uint8_t *buf, size_t cap);

/* Feed one byte from the line. Returns TE_RX_MORE until a 0x00 ends the
 * frame, then the verdict; the receiver is then ready for the next frame.
 * The per-byte work is a few table look-ups, so a frame is checked the
 * moment its delimiter arrives. */
int te_rx_byte(te_rx_t *rx, uint8_t byte);

/* Header fields and payload length of a frame te_rx_byte() accepted. */
uint8_t te_rx_cmd(const te_rx_t *rx);
uint16_t te_rx_seq(const te_rx_t *rx);
size_t te_rx_payload_len(const te_rx_t *rx);

/* ---- sending ------------------------------------------------------------- */

/* Where encoded bytes go (the UART). */
typedef void (*te_write_fn)(const uint8_t *data, uint32_t len);

/* Finish the raw frame in buf: buf[0..2] = cmd, seq; the payload is already
 * at buf + TE_FRAME_HEADER; appends the CRC. Returns the raw frame length.
 * buf must hold payload_len + TE_FRAME_OVERHEAD bytes. */
size_t te_frame_finish(uint8_t *buf, uint8_t cmd, uint16_t seq, size_t payload_len);

/* COBS-encode src straight to write(), block by block (no second buffer):
 * a code byte, then up to 254 bytes of src. No delimiters. */
void te_cobs_write(const uint8_t *src, size_t len, te_write_fn write);

/* Send a finished raw frame: 0x00, COBS(raw), 0x00. The leading 0x00 ends
 * whatever garbage the other side holds as a (bad) frame of its own. */
void te_frame_write(const uint8_t *raw, size_t len, te_write_fn write);

/* Little-endian field helpers. */
void te_put_u16(uint8_t *p, uint16_t v);
void te_put_u32(uint8_t *p, uint32_t v);
void te_put_u64(uint8_t *p, uint64_t v);
uint16_t te_get_u16(const uint8_t *p);
uint32_t te_get_u32(const uint8_t *p);

#endif /* TE_PROTOCOL_H */
