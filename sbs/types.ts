// SBS v1 document types (../shared/spec/sbs-v1.md). Values here are already validated and
// normalised: MACs lower case with ':', architectures from the fixed set.

export const ARCHES = ['bios', 'efi-ia32', 'efi-x64', 'efi-arm64'] as const;
export type Arch = (typeof ARCHES)[number];

export type Action =
  | { readonly type: 'local' }
  | { readonly type: 'boot'; readonly image: string; readonly once: boolean }
  | { readonly type: 'menu' }
  | { readonly type: 'wait' };

export interface MenuItem {
  readonly label: string;
  readonly action: Action;
}

export interface Menu {
  readonly prompt: string;
  readonly timeoutSec: number;
  readonly items: readonly MenuItem[];
}

export type RespondMode = 'all' | 'known' | 'none';

export interface PxeConfig {
  readonly respond: RespondMode;
  readonly unknown: Action;
  readonly responseDelayMs: number;
  readonly bootFiles: Readonly<Partial<Record<Arch, string>>>;
  readonly menu?: Menu;
  /** What a machine with no client entry gets (spec "Initial deployment"). */
  readonly initialDeployment?: InitialDeployment;
}

export interface Client {
  readonly mac: string;
  readonly uuid?: string;
  readonly name?: string;
  readonly action: Action;
}

export interface Predefined {
  readonly mac: string;
  readonly uuid?: string;
  readonly name: string;
}

export type ImageType = 'linux' | 'winpe' | 'nbp';

export interface Image {
  readonly id: string;
  readonly name: string;
  readonly arch: readonly Arch[];
  readonly type: ImageType;
  readonly kernel?: string;
  readonly initrd?: readonly string[];
  readonly cmdline?: string;
  readonly wim?: string;
  readonly bcd?: string;
  readonly sdi?: string;
  readonly bootFile?: string;
  readonly package?: string;
}

export const JOB_TASKS = ['deploy', 'capture', 'backup', 'restore', 'erase'] as const;
export type JobTask = (typeof JOB_TASKS)[number];

/** An imaging job (spec "Imaging jobs"), with its defaults filled in. */
export interface Job {
  readonly jobId: string;
  readonly mac: string;
  readonly task: JobTask;
  /** The preboot image (type linux) the machine boots to run the job. */
  readonly preboot: string;
  /** deploy, capture (required there). */
  readonly package?: string;
  /** deploy, restore: `sha256:<64 hex>`, lower case; absent = the current version. */
  readonly version?: string;
  /** `first`, `/dev/...` or `serial:...`. */
  readonly disk: string;
  /** capture, backup, deploy; absent = all, with the partition table. */
  readonly partitions?: readonly number[];
  /** backup only (default 3). */
  readonly keep?: number;
  /** erase only (default zero). */
  readonly method?: 'zero' | 'discard';
  readonly then: Action;
}

/** A Job without `jobId` and `mac`: the site makes those when a machine chooses the item. */
export type JobTemplate = Omit<Job, 'jobId' | 'mac'>;

export interface InitialDeploymentItem {
  readonly label: string;
  readonly job: JobTemplate;
}

/** config.initialDeployment (spec "Initial deployment"). */
export interface InitialDeployment {
  /** The preboot image (type linux) a machine with no client entry boots to show the items. */
  readonly preboot: string;
  readonly items: readonly InitialDeploymentItem[];
  /** An index into `items`; absent: the machine waits at the list for a key. */
  readonly default?: number;
  /** 0-3600; 0 with a default: no prompt at all. */
  readonly timeoutSec: number;
}

/** The event reported when a machine chose (or defaulted to) an item (spec "Initial deployment"). */
export interface MachineRegisteredEvent {
  readonly kind: 'machine-registered';
  readonly mac: string;
  /** The SMBIOS UUID the agent read, or null when the machine has none readable. */
  readonly uuid: string | null;
  readonly inventory: unknown;
  readonly label: string;
  readonly jobId: string;
  readonly at: string;
}

interface Envelope<K extends string> {
  readonly sbs: 1;
  readonly id: string;
  readonly kind: K;
  /** RFC 3339, as written. */
  readonly issued: string;
}

export type SbsDocument =
  | (Envelope<'config'> & { readonly config: PxeConfig })
  | (Envelope<'clients'> & { readonly clients: readonly Client[] })
  | (Envelope<'images'> & { readonly images: readonly Image[] })
  | (Envelope<'predefined-computers'> & { readonly computers: readonly Predefined[] })
  | (Envelope<'client'> & { readonly client: Client; readonly replicateTo?: readonly string[] })
  | (Envelope<'client-remove'> & { readonly mac: string; readonly replicateTo?: readonly string[] })
  | (Envelope<'image'> & { readonly image: Image })
  // The spec names this payload `id`, which the envelope's `id` already holds: see sbs/README.md.
  | (Envelope<'image-remove'> & { readonly imageId: string })
  | (Envelope<'predefined-computer'> & { readonly computer: Predefined })
  | (Envelope<'predefined-computer-remove'> & { readonly mac: string })
  | (Envelope<'job'> & { readonly job: Job })
  | (Envelope<'job-cancel'> & { readonly jobId: string });

export type SbsKind = SbsDocument['kind'];

export const SNAPSHOT_KINDS = ['config', 'clients', 'images', 'predefined-computers'] as const;
export const UPDATE_KINDS = [
  'client', 'client-remove', 'image', 'image-remove', 'predefined-computer', 'predefined-computer-remove', 'job', 'job-cancel',
] as const;
export const KINDS: readonly SbsKind[] = [...SNAPSHOT_KINDS, ...UPDATE_KINDS];
