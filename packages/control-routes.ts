// The package routes of the Interface's control socket, registered before the package component
// is loaded (it starts after the SBS intake, so it never delays it): each delegates to the
// running service, or answers 503 while it is starting. Only type imports from the component.
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import type { PackageService } from './package-service.ts';

const ROUTES = ['GET /packages', 'POST /packages/publish', 'GET /packages/jobs', 'POST /packages/rm', 'POST /packages/verify'] as const;

export function packageControlRoutes(service: () => PackageService | null): Record<string, ControlHandler> {
  return Object.fromEntries(ROUTES.map((key) => [key, (req) => {
    const s = service();
    if (s === null) throw new HttpError(503, 'the package service is starting');
    const handler = s.controlRoutes()[key];
    if (handler === undefined) throw new HttpError(404, `no route ${key}`);
    return handler(req);
  }]));
}
