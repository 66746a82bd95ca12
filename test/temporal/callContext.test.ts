// The Temporal client's call-context storage is on only while a call that uses it runs
// (src/temporal/callContext.ts): async_hooks off again after the last one, never while one is
// still running. "On" is read through a public effect: with async_hooks on, a promise reaction
// runs under an async id of its own; with them off, under 0.
import { AsyncLocalStorage, executionAsyncId } from 'node:async_hooks';
import { describe, expect, it } from 'vitest';
import { callContextOf, quietCallContext, releaseCallContext, withCallContext } from '../../src/temporal/callContext.js';

const hooksOn = async () => (await Promise.resolve().then(() => executionAsyncId())) !== 0;

/** A call that reads its context after `gate` opens, as the client's RPC does after its own awaits. */
function heldCall(storage: AsyncLocalStorage<{ id: string }>, id: string) {
  let open!: () => void;
  const gate = new Promise<void>((resolve) => (open = resolve));
  const result = withCallContext(storage, () =>
    storage.run({ id }, async () => {
      await gate;
      await new Promise((resolve) => setImmediate(resolve));
      return storage.getStore()?.id;
    }),
  );
  return { open, result };
}

describe('the Temporal call context', () => {
  it('is switched off after connecting, and back on only while a call that uses it runs', async () => {
    const storage = new AsyncLocalStorage<{ deadline: number }>();
    // What Connection.connect leaves behind: the storage ran once (ensureConnected's withDeadline).
    await storage.run({ deadline: 1 }, async () => {});
    expect(await hooksOn()).toBe(true);
    releaseCallContext(storage);
    expect(await hooksOn()).toBe(false);
  });

  it('keeps every running call its context until the last one settles, then switches off', async () => {
    const storage = new AsyncLocalStorage<{ id: string }>();
    const first = heldCall(storage, 'first');
    const second = heldCall(storage, 'second');
    first.open();
    expect(await first.result).toBe('first');
    // The first call is done; the second still reads its own context after more awaits.
    expect(await hooksOn()).toBe(true);
    second.open();
    expect(await second.result).toBe('second');
    expect(await hooksOn()).toBe(false);
  });

  it('does not switch off under a running call when released, and switches off after a failed call', async () => {
    const storage = new AsyncLocalStorage<{ id: string }>();
    const held = heldCall(storage, 'held');
    releaseCallContext(storage); // e.g. a second client connecting meanwhile
    held.open();
    expect(await held.result).toBe('held');
    expect(await hooksOn()).toBe(false);

    await expect(
      withCallContext(storage, () =>
        storage.run({ id: 'failing' }, async () => {
          await Promise.resolve();
          throw new Error('the update failed');
        }),
      ),
    ).rejects.toThrow('the update failed');
    expect(await hooksOn()).toBe(false);
  });

  it('counts every workflow-service call, each of which runs the storage (the namespace header of the client)', async () => {
    const storage = new AsyncLocalStorage<{ namespace: string }>();
    // The client's wrapper: withMetadata around the RPC, which reads its context after an await.
    const connection = {
      callContextStorage: storage,
      workflowService: {
        describeNamespace: (req: { namespace: string }) =>
          storage.run({ namespace: req.namespace }, async () => {
            await new Promise((resolve) => setImmediate(resolve));
            return storage.getStore()?.namespace;
          }),
        retries: 3, // not a method: left alone
      },
    };
    await storage.run({ namespace: 'connect' }, async () => {}); // what connecting leaves on
    quietCallContext(connection);
    expect(await hooksOn()).toBe(false);
    const [a, b] = await Promise.all([
      connection.workflowService.describeNamespace({ namespace: 'a' }),
      connection.workflowService.describeNamespace({ namespace: 'b' }),
    ]);
    expect([a, b]).toEqual(['a', 'b']);
    expect(connection.workflowService.retries).toBe(3);
    expect(await hooksOn()).toBe(false);
  });

  it('finds the storage on a client connection, and runs the call as it is without one', async () => {
    const storage = new AsyncLocalStorage();
    expect(callContextOf({ callContextStorage: storage })).toBe(storage);
    expect(callContextOf({})).toBeUndefined();
    expect(callContextOf(null)).toBeUndefined();
    await expect(withCallContext(undefined, async () => 'answered')).resolves.toBe('answered');
  });
});
