/**
 * Rules, their evaluation per conference, and the actions they take (design.md "Rules").
 *
 * ```ts
 * const rules = config.rulesFile === undefined ? [] : await loadRules(config.rulesFile);
 * const conditions = attachConditions(gateway, { rules, twilio: restClient });
 * await conditions.endConference('CF…', 'admin');          // the admin API, once-only
 * conditions.onConferenceEnded('CF…');                      // Twilio's conference-end callback
 * ```
 */
import type { Logger } from 'pino';
import type { EventBus } from '../core/events.js';
import { LEVEL_SINK_NAME } from '../sinks/level/level-sink.js';
import type { ConditionsTwilio } from './actions.js';
import { ConditionsEngine, type ConditionsEngineOptions } from './engine.js';
import type { Rule } from './rules.js';
import type { ConditionsMetrics } from './types.js';

export { classify, runAction, type ActionOutcome, type ActionTarget, type ConditionsTwilio } from './actions.js';
export { Decider, type Draft } from './decisions.js';
export { ConditionsEngine, type ConditionsEngineOptions, type EndOutcome } from './engine.js';
export { RulesError } from './errors.js';
export { findPhrase, normalizeText } from './match.js';
export { formatOf, loadRules, parseRules, RULE_ACTIONS, type Condition, type Rule, type RuleAction, type RuleFormat } from './rules.js';
export { InMemoryConferenceStore, type ConferenceRecord, type ConferenceStore, type EndState } from './store.js';
export type { AuditEntry, ConditionsMetrics, EndResult, Evidence, OutcomeRecord, ScopeKind, SilentTrack, Trigger } from './types.js';

export interface AttachConditionsOptions extends Omit<ConditionsEngineOptions, 'bus' | 'log' | 'metrics' | 'twilio' | 'rules'> {
  rules: readonly Rule[];
  /** The REST client (TwilioRestClient), or null without credentials. */
  twilio: ConditionsTwilio | null;
}

/** What the engine needs of the gateway it runs in (the Gateway provides all of it). */
export interface ConditionsHost {
  readonly log: Logger;
  readonly bus: EventBus;
  readonly metrics: ConditionsMetrics;
  readonly sinkFactories: readonly { readonly name: string }[];
  onClose(cleanup: () => Promise<void> | void): void;
}

/**
 * Builds a {@link ConditionsEngine} on the gateway's bus, logger and metrics, and closes it when
 * the gateway closes (after every stream ended, so in-flight actions finish first).
 */
export function attachConditions(gateway: ConditionsHost, opts: AttachConditionsOptions): ConditionsEngine {
  const log = gateway.log.child({ component: 'conditions' });
  const engine = new ConditionsEngine({ ...opts, bus: gateway.bus, log, metrics: gateway.metrics });
  gateway.onClose(() => engine.close());
  const needsLevels = opts.rules.some((r) => r.when.kind === 'silence' || r.when.kind === 'max-duration');
  if (needsLevels && !gateway.sinkFactories.some((f) => f.name === LEVEL_SINK_NAME)) {
    log.warn('silence and max-duration rules need the level sink, which this gateway does not run: they will not fire on the media clock');
  }
  return engine;
}
