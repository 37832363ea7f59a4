// MAC addresses: six hex pairs separated by ':' or '-' (one separator throughout), any case;
// normalised to lower case with ':'.

const MAC = /^[0-9a-fA-F]{2}([:-])[0-9a-fA-F]{2}(?:\1[0-9a-fA-F]{2}){4}$/;

/** The normalised form of `s`, or null when `s` is not a MAC address in an accepted form. */
export function normalizeMac(s: string): string | null {
  if (!MAC.test(s)) return null;
  return s.toLowerCase().replaceAll('-', ':');
}
