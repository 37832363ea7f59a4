// Which Windows a SOFTWARE registry hive describes (Windows\System32\config\SOFTWARE, key
// Microsoft\Windows NT\CurrentVersion), for the inventory's os { name, version, edition }:
//   name: ProductName ("Windows 10 Pro"). Windows 11 still writes "Windows 10 ..." there; a build
//         of 22000 or more (CurrentBuildNumber, else CurrentBuild) is Windows 11, so "Windows 10"
//         is then reported as "Windows 11" (servers say "Windows Server ..." and are kept as is).
//   version: DisplayVersion ("23H2"), else ReleaseId ("1909"), with the build and its update
//         revision (UBR): "23H2 (build 22631.2861)"; "build 22631" when neither is there.
//   edition: EditionID as Windows writes it ("Professional", "Enterprise", "Core" for Home,
//         "Education", "ServerStandard").
// Pure: hive bytes in; a malformed hive or a missing key gives the reason instead.
import { readKeyValues, valueDword, valueText } from '../protocols/registry/regf.ts';

export const CURRENT_VERSION_KEY: readonly string[] = ['Microsoft', 'Windows NT', 'CurrentVersion'];
/** The first build of Windows 11 (21H2). */
export const WINDOWS_11_FIRST_BUILD = 22000;

export interface WindowsVersion {
  readonly name: string | null;
  readonly version: string | null;
  readonly edition: string | null;
}

export function windowsVersion(softwareHive: Uint8Array): WindowsVersion | { reason: string } {
  const r = readKeyValues(softwareHive, CURRENT_VERSION_KEY);
  if ('reason' in r) return { reason: r.reason };
  const text = (name: string): string | null => {
    const v = r.values.get(name.toLowerCase());
    const s = v === undefined ? null : valueText(v)?.trim();
    return s === undefined || s === null || s === '' ? null : s;
  };
  const buildText = text('CurrentBuildNumber') ?? text('CurrentBuild');
  const build = buildText !== null && /^\d+$/.test(buildText) ? Number(buildText) : null;
  const ubr = r.values.get('ubr');
  const revision = ubr === undefined ? null : valueDword(ubr);
  let name = text('ProductName');
  if (name !== null && build !== null && build >= WINDOWS_11_FIRST_BUILD && /^Windows 10\b/.test(name)) name = name.replace(/^Windows 10/, 'Windows 11');
  const release = text('DisplayVersion') ?? text('ReleaseId');
  const buildPart = build === null ? null : `build ${build}${revision === null ? '' : `.${revision}`}`;
  const version = release !== null && buildPart !== null ? `${release} (${buildPart})` : (release ?? buildPart);
  return { name, version, edition: text('EditionID') };
}
