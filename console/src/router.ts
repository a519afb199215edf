// Routes: each area declares its own in views/<area>/routes.ts (default export: RouteRecordRaw[]),
// with meta.permission (what the API requires), meta.title (an i18n key) and meta.menu (where it sits
// in the side menu). A page the role may not use is neither in the menu nor reachable.
import { createRouter, createWebHistory, type RouteRecordRaw } from 'vue-router'
import { loadSession, session, allowed, forgetPerson } from './session'
import { whenUnauthorized } from './api/client'

declare module 'vue-router' {
  interface RouteMeta {
    title?: string            // i18n key of the page's title
    permission?: string       // the API permission the page needs (auth.PERMISSIONS)
    notRoles?: string[]       // roles the API refuses here although they hold the permission
    public?: boolean          // reachable signed out (the sign-in page)
    menu?: { group: string; order: number; icon?: string }
  }
}

const areas = import.meta.glob<{ default: RouteRecordRaw[] }>('./views/*/routes.ts', { eager: true })
export const pageRoutes: RouteRecordRaw[] = Object.values(areas).flatMap((m) => m.default)

export const router = createRouter({
  history: createWebHistory('/console/'),
  routes: [
    { path: '/signin', name: 'signin', component: () => import('./views/SignIn.vue'),
      meta: { public: true, title: 'signin.title' } },
    { path: '/', component: () => import('./views/Shell.vue'), children: pageRoutes },
    { path: '/:rest(.*)*', name: 'notfound', component: () => import('./views/NotFound.vue'),
      meta: { public: true, title: 'common.error' } },
  ],
})

router.beforeEach(async (to) => {
  if (!session.loaded) await loadSession()
  if (to.meta.public) return true
  if (!session.account) return { name: 'signin', query: { next: to.fullPath } }
  if (session.account.must_change_password && to.name !== 'password') return { name: 'password' }
  if (!allowed(to.meta)) return { name: 'forbidden' }
  return true
})

whenUnauthorized(() => {
  session.account = null
  forgetPerson()
  const here = router.currentRoute.value
  if (!here.meta.public) router.push({ name: 'signin', query: { next: here.fullPath } })
})
