import { readFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { GATEWAY_NODE_FLAGS, withGatewayNodeFlags } from '../../src/gateway/node-flags.js';

const pkg = JSON.parse(readFileSync('package.json', 'utf8')) as { scripts: Record<string, string> };
const dockerfile = readFileSync('Dockerfile', 'utf8');

describe('the gateway V8 flags (src/gateway/node-flags.ts)', () => {
  it('are what npm start, npm run demo and the Docker image start node with', () => {
    const entrypoint = dockerfile.split('\n').find((l) => l.startsWith('ENTRYPOINT'));
    for (const flag of GATEWAY_NODE_FLAGS) {
      expect(pkg.scripts.start).toContain(`node ${flag} `);
      expect(pkg.scripts.demo).toContain(`node ${flag} `);
      expect(entrypoint).toContain(`"${flag}"`);
    }
  });

  it('are flags this node accepts', () => {
    const out = execFileSync(process.execPath, [...GATEWAY_NODE_FLAGS, '-p', '1+1'], { encoding: 'utf8' });
    expect(out.trim()).toBe('2');
  });

  it('are added to a worker execArgv once, and an operator value for the same flag wins', () => {
    expect(withGatewayNodeFlags([])).toEqual([...GATEWAY_NODE_FLAGS]);
    expect(withGatewayNodeFlags(['--inspect'])).toEqual(['--inspect', ...GATEWAY_NODE_FLAGS]);
    expect(withGatewayNodeFlags(['--max-semi-space-size=8'])).toEqual(['--max-semi-space-size=8']);
    expect(withGatewayNodeFlags(['--max_semi_space_size=8'])).toEqual(['--max_semi_space_size=8']);
    expect(withGatewayNodeFlags(withGatewayNodeFlags([]))).toEqual([...GATEWAY_NODE_FLAGS]);
  });
});
