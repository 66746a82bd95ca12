// History events per refresh cycle: the events between consecutive refreshCredential activities.
import type proto from '@temporalio/proto';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

export function eventsPerCycle(events: HistoryEvent[]): number[] {
  const refreshes = events.flatMap((e, i) =>
    e.activityTaskScheduledEventAttributes?.activityType?.name === 'refreshCredential' ? [i] : [],
  );
  return refreshes.slice(1).map((at, k) => at - refreshes[k]!);
}
