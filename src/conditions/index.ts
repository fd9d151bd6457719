/**
 * Rules, their evaluation per conference, and the actions they take (docs/design.md "Rules").
 *
 * ```ts
 * const rules = config.rulesFile === undefined ? [] : await loadRules(config.rulesFile);
 * const conditions = new ConditionsEngine({ rules, bus, log, metrics, twilio: restClient, store });
 * await conditions.endConference('CF…', 'admin');          // the admin API, once-only
 * bus.emit('conference-end', event);                        // Twilio's callback: rules stop for CF…
 * ```
 */

export { classify, runAction, type ActionOutcome, type ActionTarget, type ConditionsTwilio } from './actions.js';
export { Decider, type Draft } from './decisions.js';
export { ConditionsEngine, type ConditionsEngineOptions, type EndOutcome } from './engine.js';
export { RulesError } from './errors.js';
export { findPhrase, normalizeText } from './match.js';
export { formatOf, loadRules, parseRules, RULE_ACTIONS, type Condition, type Rule, type RuleAction, type RuleFormat } from './rules.js';
export { InMemoryConferenceStore, type ConferenceRecord, type ConferenceStore, type EndState } from './store.js';
export type { AuditEntry, ConditionsMetrics, EndResult, Evidence, OutcomeRecord, ScopeKind, SilentTrack, Trigger } from './types.js';

