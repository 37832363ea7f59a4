// GUIDs (instruction ids, SMBIOS UUIDs): 8-4-4-4-12 hex digits, any case; normalised to lower
// case so that one id written in two cases is one instruction.

const GUID = /^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$/;

export function normalizeGuid(s: string): string | null {
  return GUID.test(s) ? s.toLowerCase() : null;
}
