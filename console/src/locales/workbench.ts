export default {
  zh: { workbench: { title: '工作台' } },
  en: { workbench: { title: 'My day' } },
}
