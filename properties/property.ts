// How the harmony, engine and runtime property suites define a property: what to generate and what
// must hold for each value. One definition runs under vitest (`test.prop([def.arbitrary])`) and as a
// negative control on a broken implementation (`failureOf(def)` must find a failure). The harness's
// properties for any server (`amnesia check`) are another shape: src/harness/properties.ts.
import fc from 'fast-check';

export interface PropertyDef<T> {
  arbitrary: fc.Arbitrary<T>;
  /** Throws (or rejects) when the property does not hold for `value`. */
  predicate(value: T): void | Promise<void>;
}

/** The fast-check property of a definition, for `fc.assert` / `fc.check` (which then return promises). */
export const asProperty = <T>(def: PropertyDef<T>): fc.IAsyncPropertyWithHooks<[T]> => fc.asyncProperty(def.arbitrary, async (v) => def.predicate(v));

export interface Failure<T> {
  message: string;
  /** The shrunk value that falsified the property. */
  counterexample: T;
}

/** Runs a property that must fail; returns its failure (shrunk), or undefined if it held. */
export async function failureOf<T>(def: PropertyDef<T>, params: number | fc.Parameters<[T]> = 300): Promise<Failure<T> | undefined> {
  const details = await fc.check(asProperty(def), typeof params === 'number' ? { numRuns: params } : params);
  if (!details.failed || details.counterexample === null) return undefined;
  return { message: String(details.errorInstance), counterexample: details.counterexample[0] };
}
