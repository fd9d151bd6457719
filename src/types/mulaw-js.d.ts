declare module 'mulaw-js' {
  export function encodeSample(sample: number): number;
  export function decodeSample(code: number): number;
  export function encode(samples: ArrayLike<number>): number[];
  export function decode(samples: ArrayLike<number>): number[];
  const mulaw: { encodeSample: typeof encodeSample; decodeSample: typeof decodeSample; encode: typeof encode; decode: typeof decode };
  export default mulaw;
}
