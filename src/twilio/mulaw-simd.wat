;; G.711 mu-law decoder, WebAssembly 128-bit SIMD (assembled by scripts/build-mulaw-wasm.ts into
;; mulaw-simd.wasm.ts; loaded by mulaw-simd.ts).
;;
;; decode(src, dst, len) -> energy
;;   reads `len` mu-law bytes at `src`, writes `len` int16 little-endian samples at `dst` and
;;   returns the sum of squared samples as an f64 (what decodeMulaw in mulaw.ts returns).
;;   Writes nothing past dst + 2*len; reads nothing past src + len.
;;
;; ITU-T G.711 decoding, per byte: invert it, then with x the inverted byte
;;   e = (x >> 4) & 7, m = x & 15, magnitude = (((m << 3) + 0x84) << e) - 0x84,
;;   negative when bit 7 of x is set.
;; The largest magnitude, ((15 << 3) + 0x84) << 7 = 32256 before the - 0x84, fits an i16 lane,
;; so the whole decode runs in i16 lanes. SIMD has no per-lane variable shift, so `1 << e`
;; comes from an i8x16.swizzle of a 16-byte constant indexed by x >> 4 (the sign bit lands in
;; bit 3 of the index, hence the table twice), and the shift becomes an extended multiply:
;;   b = (m << 3) + 0x84   (u8, 132..252)       p = 1 << e   (u8, 1..128)
;;   magnitude = b * p - 0x84                   (i16x8.extmul_*_i8x16_u, then a subtract)
;;   sample = (magnitude ^ s) - s               with s = -1 for negative lanes, else 0
;; Energy: i32x4.dot_i16x8_s gives sums of two squares (< 2 * 32124^2 < 2^31); the low and high
;; halves' dots added are sums of four squares, < 2^32, so they are exact as u32 and are
;; widened unsigned into an i64x2 accumulator. The sum is exact (no i32 overflow, no rounding).
;;
;; The bytes past the last multiple of 16 go through the same formula in a scalar loop, so a
;; frame of any length is decoded without touching memory outside it.
(module
  (memory (export "memory") 1)

  (func (export "decode") (param $src i32) (param $dst i32) (param $len i32) (result f64)
    (local $end i32)
    (local $x v128)
    (local $b v128)
    (local $p v128)
    (local $neg v128)
    (local $s v128)
    (local $lo v128)
    (local $hi v128)
    (local $acc v128)
    (local $energy i64)
    (local $c i32)
    (local $v i32)

    ;; Vector part: 16 bytes in, 16 samples (32 bytes) out per iteration.
    (local.set $end (i32.add (local.get $src) (i32.and (local.get $len) (i32.const -16))))
    (block $vdone
      (br_if $vdone (i32.ge_u (local.get $src) (local.get $end)))
      (loop $vloop
        (local.set $x (v128.not (v128.load (local.get $src))))
        (local.set $b
          (i8x16.add
            (v128.and (i8x16.shl (local.get $x) (i32.const 3)) (v128.const i8x16 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78 0x78))
            (v128.const i8x16 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84)))
        (local.set $p
          (i8x16.swizzle
            (v128.const i8x16 1 2 4 8 16 32 64 0x80 1 2 4 8 16 32 64 0x80)
            (i8x16.shr_u (local.get $x) (i32.const 4))))
        (local.set $neg (i8x16.shr_s (local.get $x) (i32.const 7)))

        ;; Samples 0..7.
        (local.set $s (i16x8.extend_low_i8x16_s (local.get $neg)))
        (local.set $lo
          (i16x8.sub
            (v128.xor
              (i16x8.sub
                (i16x8.extmul_low_i8x16_u (local.get $b) (local.get $p))
                (v128.const i16x8 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84))
              (local.get $s))
            (local.get $s)))
        (v128.store (local.get $dst) (local.get $lo))

        ;; Samples 8..15.
        (local.set $s (i16x8.extend_high_i8x16_s (local.get $neg)))
        (local.set $hi
          (i16x8.sub
            (v128.xor
              (i16x8.sub
                (i16x8.extmul_high_i8x16_u (local.get $b) (local.get $p))
                (v128.const i16x8 0x84 0x84 0x84 0x84 0x84 0x84 0x84 0x84))
              (local.get $s))
            (local.get $s)))
        (v128.store offset=16 (local.get $dst) (local.get $hi))

        ;; Energy: four u32 sums of four squares, widened into two i64 lanes.
        (local.set $x
          (i32x4.add
            (i32x4.dot_i16x8_s (local.get $lo) (local.get $lo))
            (i32x4.dot_i16x8_s (local.get $hi) (local.get $hi))))
        (local.set $acc
          (i64x2.add
            (local.get $acc)
            (i64x2.add (i64x2.extend_low_i32x4_u (local.get $x)) (i64x2.extend_high_i32x4_u (local.get $x)))))

        (local.set $dst (i32.add (local.get $dst) (i32.const 32)))
        (br_if $vloop (i32.lt_u (local.tee $src (i32.add (local.get $src) (i32.const 16))) (local.get $end)))))
    (local.set $energy (i64.add (i64x2.extract_lane 0 (local.get $acc)) (i64x2.extract_lane 1 (local.get $acc))))

    ;; Scalar tail: the last len % 16 bytes.
    (local.set $end (i32.add (local.get $src) (i32.and (local.get $len) (i32.const 15))))
    (block $sdone
      (loop $sloop
        (br_if $sdone (i32.ge_u (local.get $src) (local.get $end)))
        (local.set $c (i32.xor (i32.load8_u (local.get $src)) (i32.const 0xff)))
        (local.set $v
          (i32.sub
            (i32.shl
              (i32.add (i32.shl (i32.and (local.get $c) (i32.const 15)) (i32.const 3)) (i32.const 0x84))
              (i32.and (i32.shr_u (local.get $c) (i32.const 4)) (i32.const 7)))
            (i32.const 0x84)))
        (if (i32.and (local.get $c) (i32.const 0x80))
          (then (local.set $v (i32.sub (i32.const 0) (local.get $v)))))
        (i32.store16 (local.get $dst) (local.get $v))
        (local.set $energy (i64.add (local.get $energy) (i64.extend_i32_u (i32.mul (local.get $v) (local.get $v)))))
        (local.set $src (i32.add (local.get $src) (i32.const 1)))
        (local.set $dst (i32.add (local.get $dst) (i32.const 2)))
        (br $sloop)))

    (f64.convert_i64_s (local.get $energy))))
