/*
 * te_protocol.c - CRC-32, COBS and frame helpers of the tinyedge protocol.
 * See te_protocol.h and docs/protocol.md.
 */
#include "te_protocol.h"

/* CRC-32/IEEE 802.3, reflected, polynomial 0xEDB88320, init and final XOR
 * 0xFFFFFFFF. A 16-entry table (one nibble at a time): 64 bytes of flash. */
static const uint32_t crc_nibble[16] = {
    0x00000000u, 0x1DB71064u, 0x3B6E20C8u, 0x26D930ACu,
    0x76DC4190u, 0x6B6B51F4u, 0x4DB26158u, 0x5005713Cu,
    0xEDB88320u, 0xF00F9344u, 0xD6D6A3E8u, 0xCB61B38Cu,
    0x9B64C2B0u, 0x86D3D2D4u, 0xA00AE278u, 0xBDBDF21Cu,
};

/* Running a CRC-32 register over data followed by its own CRC (little-endian)
 * always leaves this value: the frame check needs no knowledge of where the
 * payload ends (zlib.crc32(data + crc) == 0x2144DF1C == ~0xDEBB20E3). */
#define CRC32_RESIDUE 0xDEBB20E3u

static uint32_t crc_step(uint32_t reg, uint8_t byte)
{
    reg ^= byte;
    reg = (reg >> 4) ^ crc_nibble[reg & 0xFu];
    return (reg >> 4) ^ crc_nibble[reg & 0xFu];
}

uint32_t te_crc32_update(uint32_t crc, const uint8_t *data, size_t len)
{
    uint32_t reg = crc ^ 0xFFFFFFFFu;
    size_t i;
    for (i = 0; i < len; ++i) {
        reg = crc_step(reg, data[i]);
    }
    return reg ^ 0xFFFFFFFFu;
}

/* ---- receiving ----------------------------------------------------------- */

void te_rx_init(te_rx_t *rx, uint8_t *buf, size_t cap)
{
    rx->buf = buf;
    rx->cap = cap;
    rx->len = 0u;
    rx->crc = 0xFFFFFFFFu;
    rx->left = 0u;
    rx->zero_after = 0u;
    rx->started = 0u;
    rx->overflow = 0u;
}

static void rx_push(te_rx_t *rx, uint8_t byte)
{
    if (rx->len >= rx->cap) {
        rx->overflow = 1u;
        return;
    }
    rx->buf[rx->len++] = byte;
    rx->crc = crc_step(rx->crc, byte);
}

static int rx_verdict(const te_rx_t *rx)
{
    if (!rx->started) {
        return TE_RX_EMPTY;
    }
    if (rx->overflow) {
        return TE_RX_TOO_LONG;
    }
    /* a block that promised more bytes than came, a frame shorter than its
     * header and CRC, or a CRC that does not match */
    if (rx->left != 0u || rx->len < TE_FRAME_OVERHEAD || rx->crc != CRC32_RESIDUE) {
        return TE_RX_BAD;
    }
    return TE_RX_FRAME;
}

int te_rx_byte(te_rx_t *rx, uint8_t byte)
{
    if (byte == 0u) {
        int verdict = rx_verdict(rx);
        size_t len = rx->len;
        te_rx_init(rx, rx->buf, rx->cap);
        rx->len = len; /* the frame stays readable until the next byte */
        return verdict;
    }
    if (rx->started == 0u) {
        rx->len = 0u; /* a new frame: forget the last one */
    }
    if (rx->overflow) {
        return TE_RX_MORE; /* skip to the delimiter */
    }
    if (rx->left == 0u) {
        /* A code byte: the previous block (if any, and shorter than 254
         * bytes) ended with a zero that the encoding removed. */
        if (rx->started && rx->zero_after) {
            rx_push(rx, 0u);
        }
        rx->started = 1u;
        rx->left = (uint8_t)(byte - 1u);
        rx->zero_after = (uint8_t)(byte != 0xFFu);
    } else {
        rx_push(rx, byte);
        rx->left--;
    }
    return TE_RX_MORE;
}

uint8_t te_rx_cmd(const te_rx_t *rx)
{
    return rx->buf[0];
}

uint16_t te_rx_seq(const te_rx_t *rx)
{
    return te_get_u16(rx->buf + 1);
}

size_t te_rx_payload_len(const te_rx_t *rx)
{
    return rx->len - TE_FRAME_OVERHEAD;
}

/* ---- sending ------------------------------------------------------------- */

size_t te_frame_finish(uint8_t *buf, uint8_t cmd, uint16_t seq, size_t payload_len)
{
    size_t n = TE_FRAME_HEADER + payload_len;
    buf[0] = cmd;
    te_put_u16(buf + 1, seq);
    te_put_u32(buf + n, te_crc32_update(0u, buf, n));
    return n + TE_FRAME_CRC;
}

void te_cobs_write(const uint8_t *src, size_t len, te_write_fn write)
{
    size_t i = 0;
    for (;;) {
        size_t run = 0;
        uint8_t code;
        while (i + run < len && src[i + run] != 0u && run < 254u) {
            run++;
        }
        code = (uint8_t)(run + 1u);
        write(&code, 1u);
        if (run > 0u) {
            write(src + i, (uint32_t)run);
        }
        i += run;
        if (i == len) {
            break; /* the data ended in (or exactly at the end of) this block */
        }
        if (run < 254u) {
            i++; /* the block ended at a zero: skip it; another block follows */
        }
    }
}

void te_frame_write(const uint8_t *raw, size_t len, te_write_fn write)
{
    static const uint8_t delimiter = 0u;
    write(&delimiter, 1u);
    te_cobs_write(raw, len, write);
    write(&delimiter, 1u);
}

/* ---- fields ----------------------------------------------------------------- */

void te_put_u16(uint8_t *p, uint16_t v)
{
    p[0] = (uint8_t)v;
    p[1] = (uint8_t)(v >> 8);
}

void te_put_u32(uint8_t *p, uint32_t v)
{
    te_put_u16(p, (uint16_t)v);
    te_put_u16(p + 2, (uint16_t)(v >> 16));
}

void te_put_u64(uint8_t *p, uint64_t v)
{
    te_put_u32(p, (uint32_t)v);
    te_put_u32(p + 4, (uint32_t)(v >> 32));
}

uint16_t te_get_u16(const uint8_t *p)
{
    return (uint16_t)(p[0] | ((uint16_t)p[1] << 8));
}

uint32_t te_get_u32(const uint8_t *p)
{
    return (uint32_t)te_get_u16(p) | ((uint32_t)te_get_u16(p + 2) << 16);
}
