// Layering of src/, checked by `depcruise src --config .dependency-cruiser.cjs` (part of `npm run lint`).
//
//   wire      the OpenAI wire types              -> nothing else in src
//   harmony   the harmony format                 -> wire
//   engine    the reference engine               -> harmony, wire
//   server    the OpenAI-compatible HTTP server  -> engine, harmony, wire
//   harness   the property checker               -> wire (it knows only its own Transport and the wire format)
//   embedded  the embedded reference target      -> server, engine, harness, harmony, wire
//   chat-data training data for a tiny chat model -> engine (its grammar checks the data), harmony, wire
//   commands/, cli.ts, index.ts, api.ts          -> anything in src
//
// Test files (*.test.ts) follow the rules of their folder. Type-only imports count
// (tsPreCompilationDeps), so `import type` from engine into harness is forbidden too.

/** A rule forbidding `folder` to import anything in src outside `allowed` (folder itself included). */
const layer = (folder, allowed, comment) => ({
  name: `${folder}-layer`,
  severity: 'error',
  comment,
  from: { path: `^src/${folder}/` },
  to: { path: '^src/', pathNot: `^src/(${[folder, ...allowed].join('|')})/` },
});

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    layer('wire', [], 'src/wire holds the OpenAI wire types; it imports nothing else from src.'),
    layer('harmony', ['wire'], 'src/harmony may import only src/harmony and src/wire.'),
    layer('engine', ['harmony', 'wire'], 'src/engine may import only src/engine, src/harmony and src/wire.'),
    layer('server', ['engine', 'harmony', 'wire'], 'src/server may import only src/server, src/engine, src/harmony and src/wire.'),
    layer(
      'harness',
      ['wire'],
      'src/harness may import only src/harness and src/wire: it talks to a target through its own Transport, never through engine, server or harmony.',
    ),
    layer('embedded', ['server', 'engine', 'harness', 'harmony', 'wire'], 'src/embedded may import server, engine, harness, harmony and wire.'),
    layer('chat-data', ['engine', 'harmony', 'wire'], 'src/chat-data may import only src/chat-data, src/engine, src/harmony and src/wire.'),
    {
      name: 'src-stays-in-src',
      severity: 'error',
      comment: 'Code in src (which is what gets published) must not import from properties/, golden/, bench/ or other files outside src.',
      from: { path: '^src/' },
      to: { dependencyTypes: ['local'], pathNot: '^src/' },
    },
    {
      name: 'no-circular',
      severity: 'error',
      comment: 'No import cycles in src (type-only imports included).',
      from: { path: '^src/' },
      to: { circular: true },
    },
    {
      name: 'not-to-unresolvable',
      severity: 'error',
      comment: 'An import that resolves to no file (a typo, or a missing .ts extension).',
      from: {},
      to: { couldNotResolve: true },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(dist|native/build)/' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    enhancedResolveOptions: {
      exportsFields: ['exports'],
      conditionNames: ['import', 'require', 'node', 'default', 'types'],
      mainFields: ['module', 'main', 'types', 'typings'],
      extensions: ['.ts', '.js', '.mjs', '.cjs', '.json', '.d.ts'],
    },
    reporterOptions: {
      text: { highlightFocused: true },
    },
  },
};
