// JSON paths for error messages: `clients[3].mac`, `config.bootFiles["odd key"]`.

export function childPath(parent: string, key: string): string {
  const part = /^[A-Za-z_$][A-Za-z0-9_$-]*$/.test(key) ? key : `[${JSON.stringify(key)}]`;
  if (parent === '') return part.startsWith('[') ? `$${part}` : part;
  return part.startsWith('[') ? `${parent}${part}` : `${parent}.${part}`;
}

export function indexPath(parent: string, index: number): string {
  return `${parent === '' ? '$' : parent}[${index}]`;
}
