// A bench's entry point: exit 0 when it is done (child processes and timers must not keep it up), 1 with the error.
export function runBench(main: () => Promise<void>): void {
  main().then(
    () => process.exit(0),
    (error: unknown) => {
      console.error(error);
      process.exit(1);
    },
  );
}
