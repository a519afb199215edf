// The one HTTP client of the console: typed from the OpenAPI document (schema.d.ts is generated from it
// at build time, so a contract change fails the build), same-origin cookies, the CSRF header on every
// state-changing request, and problem+json turned into an ApiError whose field errors forms show.
import createClient, { type Middleware } from 'openapi-fetch'
import type { paths } from './schema'
import { inChinese } from './messages'

export type { paths, components } from './schema'

let csrfToken = ''
export function setCsrf(token: string) { csrfToken = token }

// Called on a 401 from any request but the session's own: the page sends the user to sign in.
let onUnauthorized: (() => void) | null = null
export function whenUnauthorized(fn: () => void) { onUnauthorized = fn }

const UNSAFE = new Set(['POST', 'PUT', 'PATCH', 'DELETE'])
const middleware: Middleware = {
  onRequest({ request }) {
    if (UNSAFE.has(request.method) && csrfToken) request.headers.set('X-CSRF-Token', csrfToken)
    return request
  },
  onResponse({ request, response }) {
    if (response.status === 401 && !new URL(request.url).pathname.startsWith('/api/v1/session')) onUnauthorized?.()
    return response
  },
}

export const api = createClient<paths>({ baseUrl: window.location.origin, credentials: 'same-origin' })
api.use(middleware)

export interface Problem {
  title?: string
  status?: number
  detail?: string
  errors?: Record<string, string[]>
  correlation_id?: string
}

export class ApiError extends Error {
  status: number
  problem: Problem
  retryAfter: number | null
  constructor(status: number, problem: Problem, retryAfter: number | null = null) {
    super(problem.detail || problem.title || `HTTP ${status}`)
    this.status = status
    this.problem = problem
    this.retryAfter = retryAfter
  }
  /** The messages of one field ("community_code", "members.0.name"), joined for an el-form-item's error;
   *  in Chinese where the message is a common one and the console is in Chinese. */
  field(name: string): string {
    const zh = document.documentElement.lang !== 'en'
    return (this.problem.errors?.[name] ?? []).map((m) => (zh ? inChinese(m) : m)).join('; ')
  }
  get fields(): Record<string, string[]> {
    const zh = document.documentElement.lang !== 'en'
    return Object.fromEntries(Object.entries(this.problem.errors ?? {})
      .map(([k, v]) => [k, zh ? v.map(inChinese) : v]))
  }
}

/** The data of an openapi-fetch result, or throw an ApiError (a network failure is status 0). */
export async function call<T>(pending: Promise<{ data?: T; error?: unknown; response: Response }>): Promise<T> {
  let result
  try {
    result = await pending
  } catch (e) {
    throw new ApiError(0, { detail: String(e) })
  }
  if (result.response.ok) return result.data as T
  const retry = result.response.headers.get('Retry-After')
  const problem = (typeof result.error === 'object' && result.error) ? result.error as Problem : {}
  throw new ApiError(result.response.status, problem, retry ? Number(retry) : null)
}

/** Plain fetch for what is not JSON (CSV uploads and downloads), with the same cookie and CSRF header. */
export async function raw(path: string, init: RequestInit = {}): Promise<Response> {
  const headers = new Headers(init.headers)
  const method = (init.method ?? 'GET').toUpperCase()
  if (UNSAFE.has(method) && csrfToken) headers.set('X-CSRF-Token', csrfToken)
  let response: Response
  try {
    response = await fetch(path, { ...init, headers, credentials: 'same-origin' })
  } catch (e) {
    throw new ApiError(0, { detail: String(e) })
  }
  if (!response.ok) {
    let problem: Problem = {}
    try { problem = await response.json() } catch { /* not a problem document */ }
    if (response.status === 401) onUnauthorized?.()
    throw new ApiError(response.status, problem)
  }
  return response
}
