// snn_arith.h -- integer arithmetic rules of the snn-compile FPGA datapath.
//
// Part of the snn-compile HLS header library (Apache-2.0). Every rule here is one line of the
// integer datapath documented in snn_compile/ir/fixed.py (module docstring) and implemented by
// the golden model backends/emulator/arith.py; the C simulation must equal that model bit for bit.
// Rules are small structs so that a layer's configuration selects them by type (no run-time ifs).
#ifndef SNN_ARITH_H
#define SNN_ARITH_H

#include <ap_int.h>

namespace snn {

typedef ap_uint<1> spike_t;

// Two's complement width needed to hold a P-bit value plus one carry bit, capped at 64: the
// emulator computes in numpy int64, so anything wider than 64 bits wraps there as well.
template <int P> struct widen { static const int W = P < 64 ? P + 1 : 64; };

// ---------------------------------------------------------------------------------------------
// Overflow rules ovf_u / ovf_v (fixed.py: "u[t] = ovf_u(...)", "v' = ovf_v(...)";
// emulator arith.OVERFLOW). apply<W>(x) brings any ap_int value into a W-bit state.

// arith.wrap: two's complement wrap into [-2^(W-1), 2^(W-1)); ap_int narrowing truncates.
struct ovf_wrap {
    template <int W, int B> static ap_int<W> apply(const ap_int<B> &x) { return ap_int<W>(x); }
};

// arith.saturate: clip into [-2^(W-1), 2^(W-1) - 1].
struct ovf_saturate {
    template <int W, int B> static ap_int<W> apply(const ap_int<B> &x) {
        const long long hi = (1LL << (W - 1)) - 1, lo = -(1LL << (W - 1));
        if (x > hi) return ap_int<W>(hi);
        if (x < lo) return ap_int<W>(lo);
        return ap_int<W>(x);
    }
};

// arith.saturate_symmetric: clip into [-(2^(W-1) - 1), 2^(W-1) - 1].
struct ovf_saturate_symmetric {
    template <int W, int B> static ap_int<W> apply(const ap_int<B> &x) {
        const long long hi = (1LL << (W - 1)) - 1;
        if (x > hi) return ap_int<W>(hi);
        if (x < -hi) return ap_int<W>(-hi);
        return ap_int<W>(x);
    }
};
// (arith.wrap_lava needs one more bit than the state width and is refused when lowering.)

// ---------------------------------------------------------------------------------------------
// Rounding of the decay shift "rnd(x * m >> decay_bits)" (fixed.py; emulator arith.ROUNDING).

// arith.shift_floor: ap_int's >> is an arithmetic shift, i.e. floor division by 2^K.
struct rnd_floor {
    template <int K, int P> static ap_int<P> shr(const ap_int<P> &p) { return p >> K; }
};

// arith.shift_toward_zero: sign(p) * (|p| >> K) (Lava's sign-magnitude shift).
struct rnd_toward_zero {
    template <int K, int P> static ap_int<widen<P>::W> shr(const ap_int<P> &p) {
        typedef ap_int<widen<P>::W> wide_t;
        const wide_t w = p;
        if (w < 0) return wide_t(-wide_t(wide_t(-w) >> K));
        return wide_t(w >> K);
    }
};

// arith.shift_nearest: round half up, (p + 2^(K-1)) >> K; K = 0 leaves p unchanged.
struct rnd_nearest {
    template <int K, int P> static ap_int<widen<P>::W> shr(const ap_int<P> &p) {
        typedef ap_int<widen<P>::W> wide_t;
        if (K == 0) return wide_t(p);
        const wide_t w = wide_t(p) + wide_t(ap_int<64>(1) << (K > 0 ? K - 1 : 0));
        return wide_t(w >> K);
    }
};

// ---------------------------------------------------------------------------------------------
// Spike tests (fixed.py: "test(v, thr)", '>' or '>='; emulator arith.passes).
struct test_gt {
    template <int A, int B> static bool pass(const ap_int<A> &v, const ap_int<B> &thr) { return v > thr; }
};
struct test_ge {
    template <int A, int B> static bool pass(const ap_int<A> &v, const ap_int<B> &thr) { return v >= thr; }
};

// ---------------------------------------------------------------------------------------------
// Decay term "wrap(rnd(x * m >> K), intermediate_bits)" of fixed.py.
// The product is formed in P = min(64, W + MB) bits: exact when it fits, and wrapping at 64 bits
// exactly like the emulator's int64 product when it does not. OUT is the (possibly narrower)
// result width chosen by lower.py, which proves the rounded value fits or equals the target's
// intermediate_bits wrap.
template <int P, int K, class RND, int OUT, int W, int MB>
inline ap_int<OUT> decay(const ap_int<W> &x, const ap_uint<MB> &m) {
#pragma HLS INLINE
    const ap_int<P> p = x * m;
    return ap_int<OUT>(RND::template shr<K>(p));
}

// Synaptic exponent "acc << weight_exp" (a floor shift x >> -exp for negative exponents,
// emulator arith.shift_left) followed by the wrap to the accumulator width OUT
// (fixed.py: "a = wrap_acc(acc << weight_exp)").
template <int EXP, int OUT, int B>
inline ap_int<OUT> scale_wrap(const ap_int<B> &acc) {
#pragma HLS INLINE
    if (EXP >= 0) {
        const ap_int<(B + (EXP > 0 ? EXP : 0) < 64 ? B + (EXP > 0 ? EXP : 0) : 64)> wide = acc;
        return ap_int<OUT>(wide << (EXP > 0 ? EXP : 0));
    }
    return ap_int<OUT>(acc >> (EXP < 0 ? -EXP : 0));
}

// "wrap(a + b, bits)": a sum that wraps at OUT bits (fixed.py: input_bias and recurrent sums).
template <int OUT, int A, int B>
inline ap_int<OUT> add_wrap(const ap_int<A> &a, const ap_int<B> &b) {
#pragma HLS INLINE
    return ap_int<OUT>(a + b);
}

} // namespace snn

#endif // SNN_ARITH_H
