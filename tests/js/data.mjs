// data.mjs -- the seeded test data of tests/harness.h, in JS: splitmix64, and
// floats (x >> 40) / 2^24 * 2 - 1, which are exact in float32 and in double,
// so C and JS produce the same bits.
const GOLDEN = 0x9e3779b97f4a7c15n;
const MASK = (1n << 64n) - 1n;

export class TestRng {
  constructor(seed) {
    this.state = BigInt(seed) & MASK;
  }

  next() {
    this.state = (this.state + GOLDEN) & MASK;
    let z = this.state;
    z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & MASK;
    z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & MASK;
    return z ^ (z >> 31n);
  }

  float() {
    return (Number(this.next() >> 40n) / 16777216) * 2 - 1;
  }

  fill(out) {
    for (let i = 0; i < out.length; i++) out[i] = this.float();
    return out;
  }

  /** An integer in 0..n-1 (n < 2^32). */
  below(n) {
    return Number(this.next() % BigInt(n));
  }
}
