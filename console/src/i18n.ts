// Messages: Chinese first, English on the switch. Each area keeps its own in locales/<area>.ts
// ({ zh: {...}, en: {...} }); they are merged here, so pages never edit one shared file.
import { createI18n } from 'vue-i18n'

type Messages = Record<string, unknown>
const modules = import.meta.glob<{ default: { zh: Messages; en: Messages } }>('./locales/*.ts', { eager: true })
const zh: Messages = {}
const en: Messages = {}
for (const mod of Object.values(modules)) {
  Object.assign(zh, mod.default.zh)
  Object.assign(en, mod.default.en)
}

export type Lang = 'zh-CN' | 'en'
const saved = (localStorage.getItem('linli.lang') as Lang | null) ?? 'zh-CN'

export const i18n = createI18n({
  legacy: false,
  locale: saved,
  fallbackLocale: 'zh-CN',
  messages: { 'zh-CN': zh, en } as any,
})

export function setLang(lang: Lang) {
  i18n.global.locale.value = lang
  localStorage.setItem('linli.lang', lang)
  document.documentElement.lang = lang
}
document.documentElement.lang = saved
