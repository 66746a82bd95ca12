// Providers are data (a small catalogue in the style of Nango's providers.yaml): endpoints,
// client ids, header sets, body formats and token-error rules. The code that reads this data
// lives in src/auth/ and never branches on a provider id.
import type { ProviderId } from '../model/providers.js';

export type { ProviderId };

/** What a single provider call authenticates with. */
export type CallAuth =
  | { type: 'api_key'; apiKey: string }
  | {
      type: 'oauth';
      accessToken: string;
      accountId?: string;
      /** Gemini Code Assist project (stored with the credential). */ project?: string;
    };

export type AuthType = CallAuth['type'];

/** The result of a code exchange or a refresh. */
export interface TokenSet {
  accessToken: string;
  /** Undefined when the provider did not send a new one: the caller keeps the old refresh token. */
  refreshToken?: string;
  /** Null when neither `expires_in` nor a JWT `exp` claim says when the token expires. */
  expiresAt: Date | null;
  idToken?: string;
  /** Provider account id (OpenAI: the ChatGPT account id from the id token; Anthropic: account uuid). */
  accountId?: string;
  /** Granted scopes, when the provider says. */
  scope?: string;
}

/**
 * Headers Maestro adds for one kind of auth. Values may hold placeholders: `{apiKey}`,
 * `{accessToken}`, `{accountId}`. Header names are lowercase.
 */
export interface HeaderSet {
  /** Maestro owns these: the client's value is dropped; a value whose placeholder has no value leaves the header out. */
  set: Record<string, string>;
  /** Used only when the client sent none. */
  defaults: Record<string, string>;
  /** Comma-separated list headers: these values first, then the client's, without duplicates, order kept. */
  merge: Record<string, string[]>;
  /**
   * Headers of `set` whose client value is kept when it starts with this prefix: the client the
   * sign-in belongs to naming itself (Claude Code's `claude-cli/…`) keeps its own name.
   */
  keepClient?: Record<string, string>;
  /**
   * An allow-list: the only client headers forwarded (lowercase). For backends that serve one
   * client's API (Codex, Code Assist), where an SDK's own headers would contradict the client
   * Maestro speaks as. Unset: every client header but the dropped ones.
   */
  forward?: string[];
}

/** A body rewrite applied to matching calls (see src/auth/clientBuilder.ts for each kind). */
export interface BodyTransformRule {
  kind: 'prepend-system-block';
  auth: AuthType;
  method: string;
  /** Exact request path, e.g. `/v1/messages`. */
  path: string;
  /** The system block text that must come first. */
  text: string;
}

/**
 * A provider path that serves inference. `{model}` matches one path segment that starts with a
 * letter or digit and holds only letters, digits and `. _ - :` (never `..`, a slash or an escape).
 */
export interface InferencePath {
  methods: string[];
  path: string;
  /**
   * A call the provider bills by tokens and reports them for: `reported` in every answer (JSON
   * body, or a stream's final event), `asked` in a stream only when the request asks (OpenAI chat
   * completions: src/usage/streamUsage.ts). A metered call whose final counts never arrive is
   * counted `incomplete`. Unset: not metered (model lists, token counting).
   */
  usage?: 'reported' | 'asked';
}

/** Body encoding of a token-endpoint request. */
export type TokenBodyFormat = 'json' | 'form';

/** Value template for token and authorize parameters. */
export type ParamTemplate =
  | '{clientId}'
  | '{clientSecret}'
  | '{redirectUri}'
  | '{scopes}'
  | '{code}'
  | '{state}'
  | '{verifier}'
  | '{challenge}'
  | '{refreshToken}'
  | (string & {});

/** An ordered list of request parameters; `{…}` values are filled in at call time. */
export type ParamList = ReadonlyArray<readonly [name: string, value: ParamTemplate]>;

/** The RFC 6749 §5.2 codes that mean Maestro's client configuration is wrong, shared by every provider. */
export const STANDARD_MISCONFIGURED_CODES = ['invalid_client', 'unauthorized_client', 'unsupported_grant_type', 'invalid_scope'];

/** How to read a token-endpoint error answer, per provider. */
export interface TokenErrorRules {
  /** Error codes meaning the grant is dead and only a new login helps. */
  reauthCodes: string[];
  /** Error codes meaning Maestro's OAuth configuration is wrong (client id/secret, scopes). */
  misconfiguredCodes: string[];
  /** For a 400/401 without a known code: descriptions that say the grant is bad. */
  reauthDescriptions: RegExp[];
  /** A 401 without a recognisable code: the presented grant was refused (reauth) or the client was (misconfigured). */
  unauthorizedWithoutCode: 'reauth' | 'misconfigured';
}

/** Where a provider puts the account id (path of object keys). */
export interface AccountIdSource {
  from: 'id_token_claims' | 'access_token_claims' | 'response';
  path: string[];
}

export interface OAuthDefinition {
  authorizeUrl: string;
  tokenUrl: string;
  clientId: string | undefined;
  clientSecret: string | undefined;
  /** Calls fail with MisconfiguredError when this is true and no client secret is configured. */
  requiresClientSecret: boolean;
  redirectUri: string;
  /** Space-separated. */
  scopes: string;
  /** Authorize URL query, in order. */
  authorizeParams: ParamList;
  exchange: { format: TokenBodyFormat; params: ParamList };
  refresh: { format: TokenBodyFormat; params: ParamList };
  /** Extra headers on token-endpoint requests (content-type and accept are set from the format). */
  tokenHeaders: Record<string, string>;
  /** True when every refresh answer carries a new, single-use refresh token. */
  rotatesRefreshTokens: boolean;
  accountId: AccountIdSource[];
  errors: TokenErrorRules;
}

/**
 * How a call reaches the API behind a base URL (src/auth/backends/): `public` forwards the
 * provider's public API as is; `codex` and `code-assist` map it onto the API that accepts sign-in tokens.
 */
export type ApiBackend = 'public' | 'codex' | 'code-assist';

/** How a provider's answers report token usage: the interpreter src/usage/dialects/ reads them with. */
export type UsageDialect = 'anthropic' | 'openai' | 'gemini';

/** Which answer format a quota endpoint speaks (src/usage/quota.ts reads each). */
export type QuotaFormat = 'anthropic-oauth-usage' | 'chatgpt-wham-usage' | 'code-assist-user-quota';

/**
 * Where a sign-in credential's quota can be read without spending a request (issue 30). The URL
 * is the OAuth base URL (after overrides) plus `path`, or with `fromParent` its parent path plus
 * `path` (the ChatGPT backend: `…/backend-api/codex` → `…/backend-api/wham/usage`). Headers may
 * hold the `{accessToken}`, `{accountId}` and `{project}` placeholders; a header whose placeholder has no
 * value is left out.
 */
export interface QuotaEndpoint {
  path: string;
  fromParent?: boolean;
  /** GET unless said (Code Assist's retrieveUserQuota is a POST with the project in its body). */
  method?: 'GET' | 'POST';
  headers: Record<string, string>;
  /**
   * A JSON body of templates (`{project}`: the credential's Code Assist project). A credential
   * missing a body placeholder's value cannot be read: its reads are `unsupported`.
   */
  body?: Record<string, string>;
  format: QuotaFormat;
}

export interface ProviderDefinition {
  id: ProviderId;
  displayName: string;
  /** Where API-key calls go. Origin plus optional base path, no trailing slash. Every proxied call stays on this origin or oauthBaseUrl's. */
  baseUrl: string;
  /** Where sign-in (OAuth) calls go, same form; unset: baseUrl (after overrides). */
  oauthBaseUrl?: string;
  /** How the calls of each auth type are carried to their base URL. */
  backends: Record<AuthType, ApiBackend>;
  headers: Record<AuthType, HeaderSet>;
  /** Client headers never forwarded to this provider (on top of the builder's global list). */
  dropHeaders: string[];
  /** Query parameters never forwarded (e.g. Gemini's `key`, which would carry the client's Maestro key). */
  dropQueryParams: string[];
  bodyTransforms: BodyTransformRule[];
  /** The paths a client key may call (src/providers/inferencePaths.ts); every other path is for admin keys. */
  inferencePaths: InferencePath[];
  /** How its answers (and its sign-in backends' answers, mapped back) report token usage. */
  usageDialect: UsageDialect;
  oauth: OAuthDefinition;
  /** The sign-in quota read; unset: none (API keys never have one: headers only). */
  quota?: QuotaEndpoint;
}
