/* page.html.h: the page the browser test serves (as a C string). It opens
 * one EventSource per URL given in its query string and reports every open,
 * message and error back to its own origin, in order, with a sequence number.
 * It must not retry or re-create an EventSource itself: reconnecting is the
 * browser's job, and that is what the test checks. */
#ifndef BROWSER_PAGE_HTML_H
#define BROWSER_PAGE_HTML_H

/* Query parameters: one per stream, name=URL, e.g. all=http://proxy/v1/watch
 * (names are the `src` of the records). A name that starts with "cred" opens
 * its EventSource with {withCredentials: true}: the browser then sends its
 * cookies for the proxy's host, and accepts the answer only if CORS allows
 * credentials. */
static const char PAGE_HTML[] =
    "<!doctype html>\n"
    "<html><head><meta charset=\"utf-8\"><title>rstmdb-proxy EventSource test</title></head>\n"
    "<body><script>\n"
    "\"use strict\";\n"
    "const q = new URLSearchParams(location.search);\n"
    "let seq = 0;\n"
    "let chain = Promise.resolve();\n"
    /* One POST at a time, so records arrive in the order they happened. */
    "function rec(src, type, es, e) {\n"
    "  const r = {seq: seq++, src: src, type: type, rs: es ? es.readyState : -1};\n"
    "  if (e && typeof e.data === \"string\") { r.data = e.data; r.id = e.lastEventId; }\n"
    "  const body = JSON.stringify(r);\n"
    "  console.log(\"record \" + body);\n"
    "  chain = chain.then(() => fetch(\"/log\", {method: \"POST\", body: body}))\n"
    "               .catch((err) => console.log(\"record POST failed: \" + err));\n"
    "}\n"
    "function watch(src, url) {\n"
    "  const es = new EventSource(url, {withCredentials: src.startsWith(\"cred\")});\n"
    "  es.onopen = () => rec(src, \"open\", es);\n"
    "  es.onmessage = (e) => rec(src, \"message\", es, e);\n"
    /* A server-sent `event: error` is a MessageEvent with data; a lost or
     * refused connection is a plain Event. */
    "  es.addEventListener(\"error\", (e) =>\n"
    "    rec(src, e instanceof MessageEvent ? \"server-error\" : \"error\", es, e));\n"
    "}\n"
    "rec(\"page\", \"loaded\", null);\n"
    "for (const [src, url] of q) watch(src, url);\n"
    "</script></body></html>\n";

#endif
