import { EXIT, parse, type Io } from './main.js';
import { EnvironmentError } from '../util/diagnostics.js';

export async function runVerify(args: string[], io: Io): Promise<number> {
  parse(args, {
    site: { type: 'string', multiple: true },
    out: { type: 'string', default: 'out' },
    boot: { type: 'boolean' },
    jobs: { type: 'string' },
    junit: { type: 'string' },
  });
  io.err('');
  throw new EnvironmentError('verify is not available in this build');
  return EXIT.ok;
}
