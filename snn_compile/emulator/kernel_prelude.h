/* Helpers of the native emulator's generated kernels (pasted at the top of every kernel source,
 * so the kernel's hash covers them; see snn_compile/emulator/kernel_source.py).
 *
 * Datapath values are int64_t. Sums, differences, products and left shifts are done on
 * uint64_t, which C defines to wrap modulo 2**64: the datapath's 64-bit two's complement width.
 * The conversion back to int64_t is modular with GCC and Clang (and -fwrapv is passed too).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#ifdef _OPENMP
#include <omp.h>
#endif

static inline int64_t snn_add(int64_t a, int64_t b) { return (int64_t)((uint64_t)a + (uint64_t)b); }
static inline int64_t snn_sub(int64_t a, int64_t b) { return (int64_t)((uint64_t)a - (uint64_t)b); }
static inline int64_t snn_mul(int64_t a, int64_t b) { return (int64_t)((uint64_t)a * (uint64_t)b); }
static inline int64_t snn_shl(int64_t x, int k) { return (int64_t)((uint64_t)x << k); }

/* clip(floor(v / thr), 0, cap) for thr > 0: a multi-spike count. A negative v gives a
 * non-positive floor quotient, clipped to 0, so the truncating C division suffices. */
static inline int64_t snn_count(int64_t v, int64_t thr, int64_t cap) {
    if (v <= 0) return 0;
    const int64_t q = v / thr;
    return q < cap ? q : cap;
}

/* Positions (and values) of the non-zero entries of one input row: the events of a step.
 * Returns how many there are; idx (and val) must hold n entries. */
#define SNN_DEFINE_COLLECT(NAME, T)                                                         \
    static inline int64_t NAME(const T *x, int64_t n, int32_t *idx, int64_t *val) {         \
        int64_t k = 0;                                                                       \
        for (int64_t i = 0; i < n; i++) {                                                    \
            idx[k] = (int32_t)i;                                                             \
            val[k] = (int64_t)x[i];                                                          \
            k += x[i] != 0;                                                                  \
        }                                                                                    \
        return k;                                                                            \
    }
SNN_DEFINE_COLLECT(snn_collect_int8_t, int8_t)
SNN_DEFINE_COLLECT(snn_collect_int16_t, int16_t)
SNN_DEFINE_COLLECT(snn_collect_int32_t, int32_t)
SNN_DEFINE_COLLECT(snn_collect_int64_t, int64_t)

/* Spikes (0/1 or counts) are sparse bytes: skip eight zero bytes at a time. */
static inline int64_t snn_collect_uint8_t(const uint8_t *x, int64_t n, int32_t *idx,
                                          int64_t *val) {
    int64_t k = 0, i = 0;
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    for (; i + 8 <= n; i += 8) {
        uint64_t word;
        memcpy(&word, x + i, 8);
        while (word) {
            const int byte = __builtin_ctzll(word) >> 3;  /* lowest non-zero byte (little endian) */
            idx[k] = (int32_t)(i + byte);
            val[k++] = x[i + byte];
            word &= ~((uint64_t)0xff << (8 * byte));
        }
    }
#endif
    for (; i < n; i++) {
        idx[k] = (int32_t)i;
        val[k] = x[i];
        k += x[i] != 0;
    }
    return k;
}

/* An upper bound of |sum of w * x| over the events: sum of |x| * (max |w| of the event's
 * column; the caller clips these at 2**31), computed until it reaches `cap` <= 2**31 (the
 * caller only asks whether it stays below). Each term is at most 2**62 and the sum so far below
 * 2**31: no overflow. */
static inline int64_t snn_event_bound(const int32_t *idx, const int64_t *val, int64_t nnz,
                                      const int64_t *colmax, int64_t cap) {
    uint64_t bound = 0;
    for (int64_t k = 0; k < nnz && bound < (uint64_t)cap; k++) {
        const uint64_t x = val[k] < 0 ? 0 - (uint64_t)val[k] : (uint64_t)val[k];
        bound += (x < (uint64_t)cap ? x : (uint64_t)cap) * (uint64_t)colmax[idx[k]];
    }
    return bound < (uint64_t)cap ? (int64_t)bound : cap;
}
