// Which property of the default check catches each failpoint of the reference engine first (others
// may too; spec/failpoints.md). Test knowledge: the harness itself knows nothing of failpoints.
import type { RuntimeFailpointName } from '../src/engine/failpoints.ts';
import { cancelNoTrace, concurrencyIndependence, historyIndependence, seededReproducibility } from '../src/harness/properties.ts';

export const failpointCatchers: Readonly<Record<RuntimeFailpointName, string>> = {
  'kv-trim-noop': historyIndependence.name,
  'full-hit-no-rerun': historyIndependence.name,
  'shared-rng': seededReproducibility.name,
  'parser-reuse': historyIndependence.name,
  'abort-desync': cancelNoTrace.name,
  'evict-referenced': historyIndependence.name,
  'batch-variant': concurrencyIndependence.name,
  'response-memo': historyIndependence.name,
};
