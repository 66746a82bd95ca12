// Waiting in tests: a plain sleep, and polling a condition with a deadline and a reason.
export const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/** Polls fn until it returns a truthy value (or throws the last error / a timeout). */
export async function until<T>(
  fn: () => T | Promise<T>,
  opts: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<NonNullable<T>> {
  const deadline = Date.now() + (opts.timeoutMs ?? 30_000);
  let last: unknown;
  for (;;) {
    try {
      const value = await fn();
      if (value) return value as NonNullable<T>;
      last = undefined;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) {
      throw new Error(
        `timed out waiting for ${opts.what ?? 'a condition'}${last ? `: ${last instanceof Error ? last.message : String(last)}` : ''}`,
      );
    }
    await sleep(opts.intervalMs ?? 100);
  }
}
