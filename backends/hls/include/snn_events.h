// snn_events.h -- event-driven synaptic accumulation of the event design.
//
// Part of the snn-compile HLS header library (Apache-2.0). Same sums as snn_synapse.h
// ("acc_k = W_k (*) x_k" of snn_compile/ir/fixed.py), computed by scattering: for every event
// (index i, value v) of the source's list, acc += v * (the weight row of i). Only rows of
// inputs that spiked are read. The accumulator type is wide enough for max|x| * max row sum|W|
// (lower.py), so the result is exact in any event order. The neuron loop reads each
// accumulator once per step with take() (which also clears it; pooled convolution sums are
// cleared by clear_conv() after the loop).
//
// CFG (generated per projection in firmware/snn_params.h): N_IN, N_OUT (or the convolution
// geometry), LANES (weights added per cycle), WORDS (cycles per event: ceil(row / LANES)),
// BASE (word offset of the rows in external memory), WB (weight bits), w_t, acc_t.
#ifndef SNN_EVENTS_H
#define SNN_EVENTS_H

#include "snn_arith.h"
#include "snn_synapse.h"

namespace snn {

// Dense, rows on chip: for every event (i, v), acc[o] += v * W[i][o] over the row of i, LANES
// per cycle (the ROM is reshaped by LANES, so the LANES weights of a cycle are one word).
template <class CFG, class RING>
void dense_events(const RING &src, int age, const typename CFG::wrom_t W[CFG::N_IN][CFG::N_OUT],
                  typename CFG::acc_t acc[CFG::N_OUT]) {
#pragma HLS INLINE off
    const int s = src.slot(age);
    const int n = src.len[s];
EVENTS:
    for (int e = 0; e < n; e++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CFG::N_IN
        const int i = src.idx[s][e];
        const typename RING::value_t v = src.val[s][e];
    ROW:
        for (int wd = 0; wd < CFG::WORDS; wd++) {
#pragma HLS PIPELINE II = 1
        LANE:
            for (int l = 0; l < CFG::LANES; l++) {
                const int o = wd * CFG::LANES + l;
                if (o < CFG::N_OUT) acc[o] += product(v, typename CFG::w_t(W[i][o]));
            }
        }
    }
}

// Dense, rows in external memory: the same sums, row i being WORDS words from word
// BASE + i * WORDS of mem, each word holding LANES weights of WB bits (lane l in bits
// [l * WB, (l + 1) * WB), two's complement). A row is one burst read per event.
template <class CFG, class RING, class MEM>
void dense_events_axi(const RING &src, int age, const MEM *mem, typename CFG::acc_t acc[CFG::N_OUT]) {
#pragma HLS INLINE off
    const int s = src.slot(age);
    const int n = src.len[s];
EVENTS:
    for (int e = 0; e < n; e++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CFG::N_IN
        const int i = src.idx[s][e];
        const typename RING::value_t v = src.val[s][e];
        const MEM *row = mem + CFG::BASE + i * CFG::WORDS;
    BURST:
        for (int wd = 0; wd < CFG::WORDS; wd++) {
#pragma HLS PIPELINE II = 1
            const MEM word = row[wd];
        UNPACK:
            for (int l = 0; l < CFG::LANES; l++) {
                const int o = wd * CFG::LANES + l;
                const ap_uint<CFG::WB> bits = word.range(l * CFG::WB + CFG::WB - 1, l * CFG::WB);
                const typename CFG::w_t w = bits;  // the same WB bits, two's complement
                if (o < CFG::N_OUT) acc[o] += product(v, w);
            }
        }
    }
}

// Elementwise: acc[i] += W[i] * v, one event per cycle.
template <class CFG, class RING>
void elementwise_events(const RING &src, int age, const typename CFG::wrom_t W[CFG::N],
                        typename CFG::acc_t acc[CFG::N]) {
#pragma HLS INLINE off
    const int s = src.slot(age);
    const int n = src.len[s];
EVENTS:
    for (int e = 0; e < n; e++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CFG::N
#pragma HLS PIPELINE II = 1
        const int i = src.idx[s][e];
        acc[i] += product(src.val[s][e], typename CFG::w_t(W[i]));
    }
}

// Convolution by scattering: an event at input (c, y, x) adds W[c][ky * KW + kx][col] to the
// sum of output channel group * COUT_G + col at every position (oy, ox) whose window covers
// it: oy * SH - PH + ky * DH = y. Weights by input channel: W[c][tap][col] = w[co][ci][ky][kx];
// sums acc[co][oy * OW + ox] before pooling. KH * KW * WORDS cycles per event.
template <class CFG, class RING>
void conv_events(const RING &src, int age,
                 const typename CFG::wrom_t W[CFG::C_IN][CFG::KH * CFG::KW][CFG::COUT_G],
                 typename CFG::acc_t acc[CFG::C_OUT][CFG::OH * CFG::OW]) {
#pragma HLS INLINE off
    const int s = src.slot(age);
    const int n = src.len[s];
EVENTS:
    for (int e = 0; e < n; e++) {
#pragma HLS LOOP_TRIPCOUNT min = 0 max = CFG::C_IN * CFG::H * CFG::W
        const int i = src.idx[s][e];
        const typename RING::value_t v = src.val[s][e];
        const int c = i / (CFG::H * CFG::W), y = (i / CFG::W) % CFG::H, x = i % CFG::W;
        const int g = c / CFG::CIN_G;
    TAPS:
        for (int k = 0; k < CFG::KH * CFG::KW * CFG::WORDS; k++) {
#pragma HLS PIPELINE II = 1
            const int tap = k / CFG::WORDS, wd = k % CFG::WORDS;
            const int ky = tap / CFG::KW, kx = tap % CFG::KW;
            const int ny = y + CFG::PH - ky * CFG::DH, nx = x + CFG::PW - kx * CFG::DW;
            const bool hit = ny >= 0 && nx >= 0 && ny % CFG::SH == 0 && nx % CFG::SW == 0 &&
                             ny / CFG::SH < CFG::OH && nx / CFG::SW < CFG::OW;
            const int pos = hit ? (ny / CFG::SH) * CFG::OW + nx / CFG::SW : 0;
        LANE:
            for (int l = 0; l < CFG::LANES; l++) {
                const int col = wd * CFG::LANES + l;
                if (hit && col < CFG::COUT_G)
                    acc[g * CFG::COUT_G + col][pos] += product(v, typename CFG::w_t(W[c][tap][col]));
            }
        }
    }
}

// The step's sum of neuron i, and the accumulator cleared for the next step.
template <class CFG>
inline typename CFG::acc_t take(typename CFG::acc_t acc[CFG::N_OUT], int i) {
#pragma HLS INLINE
    const typename CFG::acc_t sum = acc[i];
    acc[i] = 0;
    return sum;
}

// Convolution: the sum at neuron i = (co, py, px), or the max over its pooling window of sums
// (those are cleared by clear_conv, since windows may overlap).
template <class CFG>
inline typename CFG::acc_t take_conv(typename CFG::acc_t acc[CFG::C_OUT][CFG::OH * CFG::OW], int i) {
#pragma HLS INLINE
    const int co = i / (CFG::POH * CFG::POW), p = i % (CFG::POH * CFG::POW);
    if (!CFG::POOLED) {
        const typename CFG::acc_t sum = acc[co][p];
        acc[co][p] = 0;
        return sum;
    }
    const int oy = (p / CFG::POW) * CFG::PSH, ox = (p % CFG::POW) * CFG::PSW;
    typename CFG::acc_t best = acc[co][oy * CFG::OW + ox];
WINDOW:
    for (int k = 1; k < CFG::PKH * CFG::PKW; k++) {
        const typename CFG::acc_t sum = acc[co][(oy + k / CFG::PKW) * CFG::OW + ox + k % CFG::PKW];
        if (sum > best) best = sum;
    }
    return best;
}

template <class CFG>
void clear_conv(typename CFG::acc_t acc[CFG::C_OUT][CFG::OH * CFG::OW]) {
#pragma HLS INLINE off
CLEAR:
    for (int k = 0; k < CFG::ACC_BANKS_ROUNDS * CFG::OH * CFG::OW; k++) {
#pragma HLS PIPELINE II = 1
        const int round = k / (CFG::OH * CFG::OW), p = k % (CFG::OH * CFG::OW);
        for (int l = 0; l < CFG::ACC_BANKS; l++) {
            const int co = round * CFG::ACC_BANKS + l;
            if (co < CFG::C_OUT) acc[co][p] = 0;
        }
    }
}

} // namespace snn

#endif // SNN_EVENTS_H
