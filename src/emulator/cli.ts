/**
 * `streamgate sim`: the emulator as a process. Credentials come from --account-sid /
 * --auth-token, else TWILIO_ACCOUNT_SID / TWILIO_AUTH_TOKEN, else are generated and printed
 * (a token given to us is never printed). Runs until SIGINT or SIGTERM.
 */
import { randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import pino from 'pino';
import { newSid } from '../twilio/sids.js';
import { controlRoutes } from './control-routes.js';
import { startSim } from './server.js';

export interface SimCliIo {
  env?: NodeJS.ProcessEnv;
  stdout?: { write(s: string): unknown };
  stderr?: { write(s: string): unknown };
  /** Stops the emulator when aborted (tests); SIGINT/SIGTERM always do. */
  signal?: AbortSignal;
}

const USAGE = `usage: streamgate sim [--port 3100] [--host 127.0.0.1] [--account-sid AC…] [--auth-token …]
                     [--speed 1] [--require-wss] [--log-level info]

A local Twilio: REST under /2010-04-01 (CreateCall runs your TwiML; streams, conferences),
Media Streams to your WebSocket server (one-way and <Connect><Stream> two-way), signed callbacks.
Point twilio-node at it with client.api.baseUrl (or TWILIO_API_URL for streamgate).

control API:
${controlRoutes()
  .map((r) => `  ${r}`)
  .join('\n')}
`;

/** Runs the emulator CLI with `argv` (the arguments after `sim`); resolves with the exit code. */
export async function runSimCli(argv: readonly string[], io: SimCliIo = {}): Promise<number> {
  const env = io.env ?? process.env;
  const out = io.stdout ?? process.stdout;
  const err = io.stderr ?? process.stderr;
  let values;
  try {
    ({ values } = parseArgs({
      args: [...argv],
      options: {
        port: { type: 'string', default: '3100' },
        host: { type: 'string', default: '127.0.0.1' },
        'account-sid': { type: 'string' },
        'auth-token': { type: 'string' },
        speed: { type: 'string', default: '1' },
        'require-wss': { type: 'boolean', default: false },
        'log-level': { type: 'string', default: 'info' },
        help: { type: 'boolean', short: 'h', default: false },
      },
      strict: true,
    }));
  } catch (e) {
    err.write(`${(e as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    out.write(USAGE);
    return 0;
  }
  const port = Number(values.port);
  const speed = values.speed === 'Infinity' ? Infinity : Number(values.speed);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    err.write(`--port must be an integer 0..65535\n`);
    return 2;
  }
  if (Number.isNaN(speed) || speed < 0) {
    err.write(`--speed must be a non-negative number (0 = unpaced)\n`);
    return 2;
  }
  const accountSid = values['account-sid'] ?? env.TWILIO_ACCOUNT_SID ?? newSid('account');
  const givenToken = values['auth-token'] ?? env.TWILIO_AUTH_TOKEN;
  const authToken = givenToken ?? randomBytes(16).toString('hex');

  let sim;
  try {
    sim = await startSim({
      port,
      host: values.host,
      accountSid,
      authToken,
      speed,
      requireWss: values['require-wss'],
      logger: pino({ level: values['log-level'] }, pino.destination(2)),
    });
  } catch (e) {
    err.write(`streamgate sim: ${(e as Error).message}\n`);
    return 1;
  }
  out.write(`streamgate sim: Twilio emulator listening on ${sim.url}\n`);
  out.write(`  TWILIO_API_URL=${sim.url}\n`);
  out.write(`  TWILIO_ACCOUNT_SID=${accountSid}\n`);
  out.write(givenToken === undefined ? `  TWILIO_AUTH_TOKEN=${authToken}   (generated)\n` : `  TWILIO_AUTH_TOKEN=(as given)\n`);
  out.write(`  control API: ${sim.url}/sim/ (lists every route)\n`);

  await new Promise<void>((resolve) => {
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      io.signal?.removeEventListener('abort', stop);
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
    if (io.signal?.aborted) stop();
    else io.signal?.addEventListener('abort', stop, { once: true });
  });
  await sim.close();
  out.write('streamgate sim: stopped\n');
  return 0;
}
