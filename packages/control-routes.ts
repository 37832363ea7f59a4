// The package routes of the Interface's control socket. The control socket starts before the
// package component (which starts after the SBS intake, so it never delays it): until the
// component runs, each route answers 503.
import { HttpError, type ControlHandler } from '../platform/local/control.ts';
import type { PackageService } from './package-service.ts';

const ROUTES = ['GET /packages', 'POST /packages/publish', 'GET /packages/jobs', 'POST /packages/rm', 'POST /packages/verify'] as const;

export function packageControlRoutes(service: PackageService): Record<string, ControlHandler> {
  const routes = service.controlRoutes();
  return Object.fromEntries(ROUTES.map((key) => [key, (req) => {
    if (!service.running) throw new HttpError(503, 'the package service is starting');
    const handler = routes[key];
    if (handler === undefined) throw new HttpError(404, `no route ${key}`);
    return handler(req);
  }]));
}
