// Delta debugging on top of fast-check's shrinking, which can stop in a local minimum of its own
// moves: keeps taking the first simpler candidate that still fails until none does.

export async function minimize<T>(value: T, simpler: (value: T) => T[], fails: (candidate: T) => Promise<boolean>, onStep?: (value: T) => void): Promise<T> {
  for (let improved = true; improved;) {
    improved = false;
    for (const candidate of simpler(value)) {
      if (await fails(candidate)) {
        value = candidate;
        onStep?.(value);
        improved = true;
        break;
      }
    }
  }
  return value;
}
