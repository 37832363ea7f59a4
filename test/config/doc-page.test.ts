// docs/configuration.md is the key table `netboot config doc` prints: the page cannot drift from the
// schema that validates the file.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { keyTableMarkdown } from '../../platform/runtime/config-doc.ts';

test('docs/configuration.md holds exactly the current key table', () => {
  const page = readFileSync(join(import.meta.dirname, '../../docs/configuration.md'), 'utf8');
  const table = page.slice(page.indexOf('| section |')).trimEnd();
  assert.equal(table, keyTableMarkdown().trimEnd(), 'regenerate it: see the first lines of docs/configuration.md');
});
