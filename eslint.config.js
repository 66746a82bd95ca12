// ESLint (flat config): typescript-eslint's recommended rules, plus the type-aware ones that
// catch what bites a Temporal + Express service: promises nobody awaits or handles; and the
// floors of src/ (DESIGN.md "Layout"): an import goes down, never up, and no folder imports in a
// circle. Workflow code and the shared vocabulary (src/model/) import no Node built-in.
import { builtinModules } from 'node:module';
import js from '@eslint/js';
import importX from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

/**
 * The floors of src/, lowest first (DESIGN.md): a folder may import its own floor and those
 * below. `.` is the files at the top of src/ (config, errors, logger…).
 */
const FLOORS = [
  ['model'],
  ['.'],
  ['crypto', 'providers'],
  ['db'],
  ['auth', 'usage', 'clientKeys', 'pools'],
  ['upstream'],
  ['activities'],
  ['workflows'],
  ['temporal'],
  ['credentials'],
  ['api', 'admin'],
  ['app'],
  ['cli'],
];
/** On top of the floors: the API edge reaches storage and Temporal only through the use cases. */
const ALSO_BARRED = { api: ['db', 'temporal'] };

const NODE_BUILTINS = [...builtinModules, ...builtinModules.map((m) => `node:${m}`)];

/** Import patterns that name a folder of src/, from a file in `folder` (relative imports only). */
const folderPatterns = (folders) =>
  folders.flatMap((f) => (f === '.' ? ['../*.js', '../../*.js'] : [`**/${f}/**`, `./${f}/*`, `../${f}/*`]));

function floorRules() {
  return FLOORS.flatMap((floor, level) => {
    const above = FLOORS.slice(level + 1).flat();
    return floor.flatMap((folder) => {
      const barred = [...above, ...(ALSO_BARRED[folder] ?? [])];
      const files = folder === '.' ? ['src/*.ts'] : [`src/${folder}/**/*.ts`];
      // Files at the top of src/ import folders as ./name/…; the others as ../name/… (or deeper).
      const patterns = folder === '.' ? barred.map((f) => `./${f}/*`) : folderPatterns(barred);
      const restricted = [
        {
          group: patterns,
          message: `src/${folder === '.' ? '' : `${folder}/`} is on a lower floor than what this imports (DESIGN.md "Layout": imports go down, never up); hand it what it needs as a function instead`,
        },
      ];
      if (folder === 'model') restricted.push({ group: NODE_BUILTINS, message: 'src/model/ is workflow-safe: no Node built-ins' });
      if (barred.length === 0) return []; // the top floor
      return [{ files, rules: { 'no-restricted-imports': ['error', { patterns: restricted }] } }];
    });
  });
}

export default tseslint.config(
  { ignores: ['node_modules/', 'dist/', '.maestro/', 'coverage/'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    files: ['**/*.ts'],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    plugins: { 'import-x': importX },
    rules: {
      '@typescript-eslint/no-floating-promises': 'error',
      '@typescript-eslint/no-misused-promises': ['error', { checksVoidReturn: { arguments: false, attributes: false } }],
      '@typescript-eslint/await-thenable': 'error',
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_', caughtErrors: 'none' }],
      // Validators and redaction match control characters on purpose.
      'no-control-regex': 'off',
      'import-x/first': 'error',
      'no-duplicate-imports': ['error', { allowSeparateTypeImports: true }],
    },
  },
  ...floorRules(),
  {
    // Workflow code is bundled and replayed by Temporal: deterministic, no Node built-ins.
    files: ['src/workflows/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              group: folderPatterns(FLOORS.slice(FLOORS.findIndex((f) => f.includes('workflows')) + 1).flat()),
              message: 'imports go down, never up (DESIGN.md "Layout")',
            },
            { group: NODE_BUILTINS, message: 'workflow code runs in the Temporal sandbox: no Node built-ins' },
          ],
        },
      ],
    },
  },
  {
    // No folder imports in a circle (a file's own folder may).
    files: ['src/**/*.ts'],
    // Imports name the compiled .js; the sources are .ts.
    settings: {
      'import-x/extensions': ['.ts', '.js'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      'import-x/resolver-next': [importX.createNodeResolver({ extensionAlias: { '.js': ['.ts', '.js'] } })],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  // Tests read answers whose shape is the thing under test.
  { files: ['test/**/*.ts'], rules: { '@typescript-eslint/no-explicit-any': 'off' } },
  { files: ['**/*.js'], languageOptions: { globals: { process: 'readonly', console: 'readonly', URL: 'readonly' } } },
);
