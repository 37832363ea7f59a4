// The SBS decoder's only error. `field` is a JSON path into the document (`clients[3].mac`,
// `config.menu.items[0].action.type`) or `(document)` for the file as a whole.
import { NetbootError } from '../platform/runtime/errors.ts';

export const DOCUMENT = '(document)';

export class SbsError extends NetbootError {
  readonly field: string;
  readonly problem: string;
  constructor(field: string, problem: string) {
    super('SBS_INVALID', `${field}: ${problem}`);
    this.field = field;
    this.problem = problem;
  }
}
