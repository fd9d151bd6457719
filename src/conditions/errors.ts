/** Errors of the conditions area. */
import { ConfigError } from '../errors.js';

/**
 * A rules file with mistakes. `problems` holds one self-contained line per mistake (file, line,
 * rule, what is wrong); the message is those lines joined, so the CLI prints them one per line
 * and stops start-up, like every other {@link ConfigError}.
 */
export class RulesError extends ConfigError {
  readonly problems: readonly string[];

  constructor(problems: readonly string[]) {
    super(problems.join('\n'));
    this.name = 'RulesError';
    this.problems = problems;
  }
}
