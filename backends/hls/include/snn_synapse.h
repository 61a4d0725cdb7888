// snn_synapse.h -- synaptic products of the parallel design.
//
// Part of the snn-compile HLS header library (Apache-2.0). Computes "acc_k = W_k (*) x_k" of
// snn_compile/ir/fixed.py (the reference: snn_compile/datapath/reference.py exact_product)
// exactly: the accumulator type CFG::acc_t is chosen by lower.py wide enough for
// max|x| * max row sum|W|, so no partial sum can overflow and the summation order does not
// matter. Exponent and wrap to the target's accumulator width follow in snn::scale_wrap.
//
// Reuse factor: a projection with M products runs them in CFG::REUSE pipelined iterations of
// CFG::BLOCK = ceil(M / REUSE) parallel lanes (II = 1 per iteration).
#ifndef SNN_SYNAPSE_H
#define SNN_SYNAPSE_H

#include "snn_arith.h"

namespace snn {

// One product term. A binary spike selects the weight (an adder input, no multiplier); a
// graded value (signed input or an unsigned spike count) multiplies.
template <int WA, int WB>
inline ap_int<WA + WB> product(const ap_int<WA> &x, const ap_int<WB> &w) {
#pragma HLS INLINE
    return x * w;
}
template <int WA, int WB>
inline ap_int<WA + WB + 1> product(const ap_uint<WA> &x, const ap_int<WB> &w) {
#pragma HLS INLINE
    return ap_int<WA + 1>(x) * w;
}
template <int WB>
inline ap_int<WB> product(const ap_uint<1> &x, const ap_int<WB> &w) {
#pragma HLS INLINE
    return x ? w : ap_int<WB>(0);
}

// Dense projection. Weights are a flat ROM in input-major order: w[i * N_OUT + o] = W[o][i], so
// one reuse iteration reads one contiguous block of BLOCK weights.
template <class CFG>
void dense(const typename CFG::in_t x[CFG::N_IN], const typename CFG::wrom_t w[CFG::N_IN * CFG::N_OUT],
           typename CFG::acc_t acc[CFG::N_OUT]) {
#pragma HLS INLINE off
INIT:
    for (int o = 0; o < CFG::N_OUT; o++) {
#pragma HLS UNROLL
        acc[o] = 0;
    }
REUSE:
    for (int r = 0; r < CFG::REUSE; r++) {
#pragma HLS PIPELINE II = 1
    BLOCK:
        for (int b = 0; b < CFG::BLOCK; b++) {
            const int idx = r * CFG::BLOCK + b;
            if (idx < CFG::N_IN * CFG::N_OUT) {
                const int i = idx / CFG::N_OUT, o = idx % CFG::N_OUT;
                acc[o] += product(x[i], typename CFG::w_t(w[idx]));
            }
        }
    }
}

// Elementwise projection (skip connections, one-to-one recurrence): acc[i] = W[i] * x[i].
template <class CFG>
void elementwise(const typename CFG::in_t x[CFG::N], const typename CFG::wrom_t w[CFG::N],
                 typename CFG::acc_t acc[CFG::N]) {
#pragma HLS INLINE off
REUSE:
    for (int r = 0; r < CFG::REUSE; r++) {
#pragma HLS PIPELINE II = 1
    BLOCK:
        for (int b = 0; b < CFG::BLOCK; b++) {
            const int i = r * CFG::BLOCK + b;
            if (i < CFG::N) acc[i] = product(x[i], typename CFG::w_t(w[i]));
        }
    }
}

// Convolution sum at output position (oy, ox) of channel co (PyTorch cross-correlation,
// channels first, zero padding, groups). Weights: w[((co * CIN_G + ci) * KH + ky) * KW + kx].
template <class CFG>
inline typename CFG::acc_t conv_sum(const typename CFG::in_t x[CFG::C_IN * CFG::H * CFG::W],
                                    const typename CFG::wrom_t w[CFG::C_OUT * CFG::CIN_G * CFG::KH * CFG::KW],
                                    int co, int oy, int ox) {
#pragma HLS INLINE
    const int COUT_G = CFG::C_OUT / CFG::GROUPS;
    typename CFG::acc_t sum = 0;
TAPS:
    for (int ci = 0; ci < CFG::CIN_G; ci++) {
        for (int ky = 0; ky < CFG::KH; ky++) {
            for (int kx = 0; kx < CFG::KW; kx++) {
                const int c = (co / COUT_G) * CFG::CIN_G + ci;
                const int iy = oy * CFG::SH - CFG::PH + ky * CFG::DH;
                const int ix = ox * CFG::SW - CFG::PW + kx * CFG::DW;
                if (iy >= 0 && iy < CFG::H && ix >= 0 && ix < CFG::W) {
                    sum += product(x[(c * CFG::H + iy) * CFG::W + ix],
                                   typename CFG::w_t(w[((co * CFG::CIN_G + ci) * CFG::KH + ky) * CFG::KW + kx]));
                }
            }
        }
    }
    return sum;
}

// 2-D convolution, optionally followed by a max over pooling windows of its sums (fixed.py:
// "a convolution may take a max over pooling windows"; PKH = PKW = PSH = PSW = 1 without
// pooling). Flattened (C, H, W) in C order on both sides like the emulator. One pooled output
// position per pipeline iteration (II = CFG::REUSE); the C_OUT x window x taps products of a
// position are unrolled.
template <class CFG>
void conv2d(const typename CFG::in_t x[CFG::C_IN * CFG::H * CFG::W],
            const typename CFG::wrom_t w[CFG::C_OUT * CFG::CIN_G * CFG::KH * CFG::KW],
            typename CFG::acc_t acc[CFG::C_OUT * CFG::POH * CFG::POW]) {
#pragma HLS INLINE off
PIXEL:
    for (int p = 0; p < CFG::POH * CFG::POW; p++) {
#pragma HLS PIPELINE II = CFG::REUSE
        const int py = p / CFG::POW, px = p % CFG::POW;
    COUT:
        for (int co = 0; co < CFG::C_OUT; co++) {
            typename CFG::acc_t best = conv_sum<CFG>(x, w, co, py * CFG::PSH, px * CFG::PSW);
        WINDOW:
            for (int k = 1; k < CFG::PKH * CFG::PKW; k++) {
                const typename CFG::acc_t sum =
                    conv_sum<CFG>(x, w, co, py * CFG::PSH + k / CFG::PKW, px * CFG::PSW + k % CFG::PKW);
                if (sum > best) best = sum;
            }
            acc[co * CFG::POH * CFG::POW + p] = best;
        }
    }
}

} // namespace snn

#endif // SNN_SYNAPSE_H
