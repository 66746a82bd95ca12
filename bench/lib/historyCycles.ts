// History events per refresh cycle: the events between consecutive refreshCredential activities,
// and where a cycle's time goes between its timer and the refresh's end (lateness by stage).
import type proto from '@temporalio/proto';
import { tsToMs } from '@temporalio/common/lib/time.js';

type HistoryEvent = proto.temporal.api.history.v1.IHistoryEvent;

const isRefresh = (e: HistoryEvent) => e.activityTaskScheduledEventAttributes?.activityType?.name === 'refreshCredential';

export function eventsPerCycle(events: HistoryEvent[]): number[] {
  const refreshes = events.flatMap((e, i) => (isRefresh(e) ? [i] : []));
  return refreshes.slice(1).map((at, k) => at - refreshes[k]!);
}

/** One timer-woken refresh, stage by stage (ms). */
export interface CycleTiming {
  /** When the refresh activity was scheduled (epoch ms). */
  scheduledAt: number;
  /** Timer fired this long after it was due (the server's timer queue). */
  timerLate: number;
  /** From the timer's workflow task being scheduled to the start of the try that completed (matching, sticky queue, timed-out tries). */
  taskWait: number;
  /** The worker held that task this long (a cache miss replays the run here). */
  taskRun: number;
  /** The refresh activity waited this long to be picked up. */
  activityWait: number;
  /** The refresh activity ran this long (token call, database write). */
  activityRun: number;
}

/**
 * For each refresh a fired timer woke (not a refresh-now or a retry): the timer's lateness, the
 * workflow task's wait and run, the activity's wait and run, from the history's event times.
 */
export function cycleTimings(events: HistoryEvent[]): CycleTiming[] {
  const at = (e: HistoryEvent) => tsToMs(e.eventTime);
  const byId = new Map(events.map((e) => [Number(e.eventId), e]));
  const out: CycleTiming[] = [];
  events.forEach((e, i) => {
    if (!isRefresh(e)) return;
    // Walk back over this cycle's workflow task to the timer that woke it.
    let fired: HistoryEvent | undefined;
    let taskScheduled: HistoryEvent | undefined;
    let taskStarted: HistoryEvent | undefined;
    let taskCompleted: HistoryEvent | undefined;
    for (let j = i - 1; j >= 0; j--) {
      const p = events[j]!;
      if (p.workflowTaskCompletedEventAttributes) taskCompleted ??= p;
      else if (p.workflowTaskStartedEventAttributes) taskStarted ??= p;
      else if (p.workflowTaskScheduledEventAttributes)
        taskScheduled = p; // the first after the timer: a failed or timed-out try counts as waiting
      else if (p.timerFiredEventAttributes) {
        fired = p;
        break;
      } else if (
        !p.upsertWorkflowSearchAttributesEventAttributes &&
        !p.workflowPropertiesModifiedEventAttributes &&
        !p.markerRecordedEventAttributes &&
        !p.workflowTaskTimedOutEventAttributes &&
        !p.workflowTaskFailedEventAttributes
      )
        return; // woken by something else (a signal, an update, an activity): not a timer cycle
    }
    const timerStarted = fired && byId.get(Number(fired.timerFiredEventAttributes!.startedEventId));
    const scheduledId = Number(e.eventId);
    const started = events.find((x) => Number(x.activityTaskStartedEventAttributes?.scheduledEventId) === scheduledId);
    const completed = events.find((x) => Number(x.activityTaskCompletedEventAttributes?.scheduledEventId) === scheduledId);
    if (!fired || !timerStarted || !taskScheduled || !taskStarted || !taskCompleted || !started || !completed) return;
    const due = at(timerStarted) + tsToMs(timerStarted.timerStartedEventAttributes!.startToFireTimeout);
    out.push({
      scheduledAt: at(e),
      timerLate: at(fired) - due,
      taskWait: at(taskStarted) - at(taskScheduled),
      taskRun: at(taskCompleted) - at(taskStarted),
      activityWait: at(started) - at(e),
      activityRun: at(completed) - at(started),
    });
  });
  return out;
}
