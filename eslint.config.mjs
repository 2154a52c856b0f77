// ESLint flat config. Besides the usual TypeScript rules it enforces Basin's dependency arrows
// (README, "Architecture"): only src/extension may import vscode; shared imports nothing of ours;
// the engine never reaches into the worker, CLI or extension; the webview sees only shared.
import tseslint from 'typescript-eslint';

const restrict = (patterns) => ({
  'no-restricted-imports': ['error', { patterns }],
});
const noVscode = { group: ['vscode'], message: 'Only src/extension may import vscode.' };

export default tseslint.config(
  { ignores: ['dist/**', '.test-dist/**', 'node_modules/**', 'scratch/**', 'out/**', '.basin-tools/**', 'test-artifacts/**', 'test/hostile/corpus/**'] },
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      'no-console': 'off',
    },
  },
  {
    files: ['src/shared/**/*.ts'],
    rules: restrict([noVscode, { group: ['../engine/*', '../worker/*', '../cli/*', '../extension/*', '@tensorflow/*'], message: 'src/shared imports nothing: it is plain types and protocols.' }]),
  },
  {
    files: ['src/engine/**/*.ts'],
    rules: restrict([noVscode, { group: ['**/worker/*', '**/cli/*', '**/extension/*'], message: 'The engine depends only on shared and TF.js.' }]),
  },
  {
    files: ['src/worker/**/*.ts', 'src/cli/**/*.ts'],
    rules: restrict([noVscode, { group: ['**/extension/*'], message: 'The worker and CLI never import the extension.' }]),
  },
  {
    files: ['src/extension/**/*.ts'],
    rules: restrict([{ group: ['**/engine/*', '**/engine', '@tensorflow/*'], message: 'The extension talks to the engine through the compute worker only.' }]),
  },
  {
    files: ['webview/**/*.ts'],
    rules: restrict([noVscode, { group: ['**/engine/*', '**/worker/*', '**/cli/*', '**/extension/*', '@tensorflow/*'], message: 'The webview sees only src/shared.' }]),
  },
  {
    files: ['esbuild.js', 'test/**/*.js', '.ci/**/*.js'],
    languageOptions: { sourceType: 'commonjs', globals: { require: 'readonly', module: 'writable', __dirname: 'readonly', process: 'readonly', console: 'readonly' } },
    rules: { '@typescript-eslint/no-require-imports': 'off' },
  },
);
