// Dynamic config for the single-process dev server Maestro embeds (development, benches).
// One partition per task queue: the default four spread a few pollers over four partitions, so
// with thousands of workflows tasks wait in partitions nobody polls and the server's pushes to
// matching time out (docs/BENCHMARKS.md, "Refresh at scale"). A real cluster keeps its defaults.
export const DEV_SERVER_TUNING_ARGS = [
  '--dynamic-config-value',
  'matching.numTaskqueueReadPartitions=1',
  '--dynamic-config-value',
  'matching.numTaskqueueWritePartitions=1',
];
