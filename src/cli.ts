#!/usr/bin/env node
/**
 * `streamgate start | sim | demo`. Configuration comes from the environment (docs/design.md);
 * a bad value stops start-up with one line naming the variable.
 */
import cluster from 'node:cluster';
import { ConfigError } from './errors.js';
import { createAppGateway } from './gateway/app.js';
import { loadConfig } from './gateway/config.js';
import { installSignalHandlers } from './gateway/lifecycle.js';
import { createLogger } from './gateway/logger.js';
import { warmUp } from './warm-up.js';

const USAGE = `usage: streamgate <command>

commands:
  start              run the gateway (configuration from the environment, see README)
  sim [--port 3100]  run the Twilio emulator alone
  demo               gateway + emulator: a simulated conference, recorded, transcribed, ended by a phrase
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start': {
      const config = loadConfig();
      if (config.workers > 1 && cluster.isPrimary) {
        const { runPrimary } = await import('./cluster.js');
        await runPrimary(config, createLogger(config.logLevel));
        return -1; // the primary exits when its workers have
      }
      const log = createLogger(config.logLevel);
      // Before listening: V8 compiles the media path on throwaway streams, not on the first calls (warm-up.ts).
      await warmUp(config, log);
      const gateway = await createAppGateway(config, { log });
      installSignalHandlers(gateway);
      const address = await gateway.listen();
      gateway.log.info({ address, publicUrl: config.publicUrl, media: `${config.publicUrl.replace(/^http/, 'ws')}/media` }, 'streamgate listening');
      return -1; // keep running
    }
    case 'sim': {
      const { runSimCli } = await import('./emulator/index.js');
      return runSimCli(rest);
    }
    case 'demo': {
      const { runDemo } = await import('./demo.js');
      return runDemo(rest);
    }
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 1 : 0;
    default:
      process.stderr.write(`streamgate: unknown command ${JSON.stringify(command)}\n${USAGE}`);
      return 1;
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code >= 0) process.exit(code);
  },
  (err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`streamgate: ${err.message}\n`);
    } else {
      process.stderr.write(`streamgate: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    }
    process.exit(1);
  },
);
