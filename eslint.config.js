// ESLint flat config: typescript-eslint's recommended rules (syntax only, no type-checked
// rules, to stay fast), with every stylistic rule that could fight Prettier switched off.
import js from '@eslint/js';
import { defineConfig, globalIgnores } from 'eslint/config';
import prettier from 'eslint-config-prettier/flat';
import globals from 'globals';
import tseslint from 'typescript-eslint';

export default defineConfig(
  globalIgnores(['dist/', 'native/build/', 'report/', 'amnesia-report/', 'coverage/', 'golden/*/', 'spec/', 'bench/data/']),
  {
    files: ['**/*.{ts,mts,cts,js,mjs,cjs}'],
    extends: [js.configs.recommended, tseslint.configs.recommended],
    languageOptions: {
      ecmaVersion: 2023,
      sourceType: 'module',
      globals: globals.node,
    },
    linterOptions: {
      reportUnusedDisableDirectives: 'error',
    },
    rules: {
      // The codebase marks deliberately unused bindings with a leading underscore (`_` in
      // `for await (const _ of g)`, `strftime_now: (_format) => ...`) and drops fields with
      // rest destructuring (`const { stream: _s, ...rest } = body`). tsc's noUnusedLocals
      // already catches the rest.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          caughtErrorsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
      // The harness matches control characters on purpose: NUL/SOH sentinels in answer text,
      // XML-invalid characters in the JUnit report, ANSI escapes in TTY output.
      'no-control-regex': 'off',
    },
  },
  {
    files: ['**/*.cjs'],
    languageOptions: { sourceType: 'commonjs' },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
  prettier,
);
