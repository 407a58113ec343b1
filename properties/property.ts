// How every property is defined: what to generate and what must hold for each value. One definition
// runs under vitest (`test.prop([def.arbitrary])`), as a negative control on a broken implementation
// (`fc.check(asProperty(def))` must fail), and later from the `amnesia check` command.
import fc from 'fast-check';

export interface PropertyDef<T> {
  arbitrary: fc.Arbitrary<T>;
  /** Throws (or rejects) when the property does not hold for `value`. */
  predicate(value: T): void | Promise<void>;
}

/** The fast-check property of a definition, for `fc.assert` / `fc.check` (which then return promises). */
export const asProperty = <T>(def: PropertyDef<T>): fc.IAsyncPropertyWithHooks<[T]> =>
  fc.asyncProperty(def.arbitrary, async (v) => def.predicate(v));

/** Runs a property that must fail, and returns the failure's message (for asserting what was caught). */
export async function failureOf<T>(def: PropertyDef<T>, numRuns = 300): Promise<string | undefined> {
  const details = await fc.check(asProperty(def), { numRuns });
  return details.failed ? String(details.errorInstance) : undefined;
}
