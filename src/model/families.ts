// Model families: the unit a family-scoped limit benches (Anthropic's weekly Opus bucket, a
// per-model Gemini quota). A bench for one family leaves a member routable for the others, so the
// request's model and a limit's window name must map to the same word.
//
// - Anthropic: `claude-opus-4-1-20250805`, `claude-3-opus-20240229`, `claude-3-5-haiku-latest` →
//   the word after `claude-` that is not a version (`opus`, `sonnet`, `haiku`, `fable`, …).
// - Gemini: `gemini-2.5-pro` → `pro`, `gemini-2.5-flash` → `flash`, `gemini-2.0-flash-lite` →
//   `flash_lite` (Code Assist quotas are per model family).
// - OpenAI: no per-model subscription bucket is known by model name → undefined.
// - Window names (rateLimits.ts spelling): `five_hour`, `seven_day` (whole credential) → undefined;
//   `seven_day_opus` → `opus`; a Codex `<name>_primary` / `<name>_secondary` → `<name>`.

/**
 * Answers already worked out, by input: a pooled call asks for its model's family and for each
 * window's on every call, and there are few distinct names. Dropped whole when full (names come
 * from clients and providers, so the table is bounded).
 */
const MEMO_MAX = 1_000;
/** Longer names are worked out each time, not kept (a client's model string could be any size). */
const MEMO_KEY_MAX = 200;
const modelFamilies = new Map<string, string | undefined>();
const windowFamilies = new Map<string, string | undefined>();

function memo(table: Map<string, string | undefined>, key: string, work: (key: string) => string | undefined): string | undefined {
  if (key.length > MEMO_KEY_MAX) return work(key);
  const known = table.get(key);
  if (known !== undefined || table.has(key)) return known;
  const found = work(key);
  if (table.size >= MEMO_MAX) table.clear();
  table.set(key, found);
  return found;
}

/** The model family a request's model belongs to, or undefined when it has none we know. */
export function modelFamily(model: string | undefined): string | undefined {
  if (typeof model !== 'string') return undefined;
  return memo(modelFamilies, model, familyOfModel);
}

function familyOfModel(model: string): string | undefined {
  const name = model.trim().toLowerCase();
  // Claude: the first word after `claude-` (and an optional version) that is letters only.
  const claude = /^(?:[a-z0-9.-]+\/)?(?:anthropic\.)?claude-(?:[\d.]+-)*([a-z]+)(?:-|$)/.exec(name);
  if (claude) return claude[1];
  const gemini = /^(?:models\/)?gemini-[\d.]+-(pro|flash(?:-lite)?)(?:-|$)/.exec(name);
  if (gemini) return gemini[1]!.replace(/-/g, '_');
  return undefined;
}

/** A time-window name: `five_hour`, `seven_day`, `30_day`, optionally followed by `_<scope>`. */
const TIME_WINDOW = /^(?:[a-z]+|\d+)_(?:minute|hour|day|week|month)(?:_([a-z0-9_]+))?$/;
/** Windows that concern the whole credential though they are not time windows by name. */
const CREDENTIAL_WINDOWS = new Set(['primary', 'secondary', 'requests', 'tokens', 'input_tokens', 'output_tokens', 'overage']);

/**
 * The family a window concerns, or undefined when it concerns the whole credential.
 * `seven_day_opus` → `opus`; `seven_day_oi` → `oi`; `five_hour`, `seven_day` → undefined. A name
 * we cannot read at all is its own family (fail closed: a limit we do not understand benches
 * something, never nothing — but not the whole credential).
 */
export function familyOfWindow(window: string): string | undefined {
  return memo(windowFamilies, window, familyOfWindowName);
}

function familyOfWindowName(window: string): string | undefined {
  const name = window.trim().toLowerCase();
  if (name === '' || CREDENTIAL_WINDOWS.has(name) || name.startsWith('priority_')) return undefined;
  const timed = TIME_WINDOW.exec(name);
  if (timed) return timed[1];
  const codex = /^([a-z0-9_]+?)_(?:primary|secondary)$/.exec(name);
  if (codex) return codex[1];
  return name;
}

/** Families Anthropic names in its weekly scoped windows; a window naming one of them is that model's. */
export const KNOWN_FAMILIES: readonly string[] = ['opus', 'sonnet', 'haiku', 'fable'];
