// snn_synapse.h -- synaptic products of the snn-compile FPGA datapath.
//
// Part of the snn-compile HLS header library (Apache-2.0). Computes "acc = W @ x" of
// snn_compile/ir/fixed.py (emulator: backends/emulator/synapse.py) exactly: the accumulator type
// CFG::acc_t is chosen by lower.py wide enough for max|x| * max_row sum|W|, so no partial sum
// can overflow and the summation order does not matter. Exponent and wrap to the target's
// accumulator width follow in snn::scale_wrap (snn_arith.h).
//
// Reuse factor: a layer with M = N_IN * N_OUT multiply-accumulates runs them in CFG::REUSE
// pipelined iterations of CFG::BLOCK = ceil(M / REUSE) parallel lanes (II = 1 per iteration).
#ifndef SNN_SYNAPSE_H
#define SNN_SYNAPSE_H

#include "snn_arith.h"

namespace snn {

// One product term. A binary spike selects the weight (an adder input, no multiplier); a graded
// input multiplies (a DSP slice).
template <int WA, int WB>
inline ap_int<WA + WB> product(const ap_int<WA> &x, const ap_int<WB> &w) {
#pragma HLS INLINE
    return x * w;
}
template <int WB>
inline ap_int<WB> product(const ap_uint<1> &x, const ap_int<WB> &w) {
#pragma HLS INLINE
    return x ? w : ap_int<WB>(0);
}

// Dense synapse. Weights are a flat ROM in input-major order: w[i * N_OUT + o] = W[o][i], so
// one reuse iteration reads one contiguous block of BLOCK weights.
template <class CFG>
void dense(const typename CFG::in_t x[CFG::N_IN], const typename CFG::w_t w[CFG::N_IN * CFG::N_OUT],
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
                acc[o] += product(x[i], w[idx]);
            }
        }
    }
}

// 2-D convolution (PyTorch cross-correlation, channels first, zero padding, groups), flattened
// (C, H, W) in C order on both sides like the emulator. One output pixel position per pipeline
// iteration (II = CFG::REUSE); the C_OUT x C_IN/G x KH x KW taps of a pixel are unrolled.
// Weights: w[((co * CIN_G + ci) * KH + ky) * KW + kx] = W[co][ci][ky][kx].
template <class CFG>
void conv2d(const typename CFG::in_t x[CFG::C_IN * CFG::H * CFG::W],
            const typename CFG::w_t w[CFG::C_OUT * CFG::CIN_G * CFG::KH * CFG::KW],
            typename CFG::acc_t acc[CFG::C_OUT * CFG::OH * CFG::OW]) {
#pragma HLS INLINE off
    const int COUT_G = CFG::C_OUT / CFG::GROUPS;
PIXEL:
    for (int p = 0; p < CFG::OH * CFG::OW; p++) {
#pragma HLS PIPELINE II = CFG::REUSE
        const int oy = p / CFG::OW, ox = p % CFG::OW;
    COUT:
        for (int co = 0; co < CFG::C_OUT; co++) {
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
                                           w[((co * CFG::CIN_G + ci) * CFG::KH + ky) * CFG::KW + kx]);
                        }
                    }
                }
            }
            acc[co * CFG::OH * CFG::OW + p] = sum;
        }
    }
}

} // namespace snn

#endif // SNN_SYNAPSE_H
