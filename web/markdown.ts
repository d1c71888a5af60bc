import DOMPurify from 'dompurify';
import { Marked } from 'marked';

const escapeHtml = (text: string) =>
  text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;').replace(/"/g, '&quot;');

/**
 * Markdown as the model wrote it, made safe: raw HTML in the text is shown as text,
 * never parsed (marked's `html` tokens are escaped), and DOMPurify cleans what
 * marked produced in case anything else slips through (links to `javascript:` …).
 */
const marked = new Marked({
  gfm: true,
  breaks: true,
  renderer: {
    html: ({ text }) => escapeHtml(text),
  },
});

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A') {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer nofollow');
  }
});

const render = (text: string): string =>
  DOMPurify.sanitize(marked.parse(text, { async: false }), { USE_PROFILES: { html: true } });

/** Finished messages' HTML: a branch read again after each answer renders every message anew. */
const finished = new Map<string, string>();
const FINISHED_KEPT = 500;

/** `finished`: the text will not change (not an answer still streaming), so its HTML is kept. */
export const renderMarkdown = (text: string, isFinished = false): string => {
  if (!isFinished) return render(text);
  let html = finished.get(text);
  if (html === undefined) {
    html = render(text);
    if (finished.size >= FINISHED_KEPT) finished.delete(finished.keys().next().value as string);
    finished.set(text, html);
  }
  return html;
};
