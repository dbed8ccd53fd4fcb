/* salesbot web console — vanilla JS, no build step.
 *
 * Talks to /console/api/* (same-origin cookie session). Messages come from a long-poll feed;
 * every user action is a POST with a fresh client_id that is reused when the same POST is retried,
 * so the server can drop duplicates.
 */
(function () {
  "use strict";

  var API = "/console/api";
  var DEMO = document.body.getAttribute("data-demo") === "true";
  var ROLE_LABELS = {
    rep: "代表",
    manager: "经理",
    director: "总监",
    member: "部门成员",
    head: "部门负责人",
    admin: "管理员",
  };
  var ROLE_ORDER = ["rep", "manager", "director", "head", "member", "admin"];
  var DEPT_LABELS = { logistics: "物流", marketing: "市场", compliance: "合规" };
  var BUTTON_LOCK_MS = 1500;
  var POLL_BACKOFF_MIN = 1000;
  var POLL_BACKOFF_MAX = 30000;
  var SEND_ATTEMPTS = 4;

  // ---- state ---------------------------------------------------------------------------------
  var state = {
    user: null,
    cursor: 0,
    pollGen: 0, // bumped to stop the running poll loop
    pollAbort: null,
    placesLoaded: false,
    pending: [], // optimistic user bubbles waiting for their echo from the feed
  };

  // ---- tiny helpers --------------------------------------------------------------------------
  function $(id) {
    return document.getElementById(id);
  }

  function sleep(ms) {
    return new Promise(function (resolve) {
      setTimeout(resolve, ms);
    });
  }

  function newClientId() {
    var c = window.crypto;
    if (c && typeof c.randomUUID === "function") {
      try {
        return c.randomUUID().replace(/-/g, "");
      } catch (e) {
        /* insecure context: fall through */
      }
    }
    var bytes = new Uint8Array(16);
    if (c && typeof c.getRandomValues === "function") {
      c.getRandomValues(bytes);
    } else {
      for (var i = 0; i < bytes.length; i++) bytes[i] = Math.floor(Math.random() * 256);
    }
    var out = "";
    for (var j = 0; j < bytes.length; j++) out += (bytes[j] + 256).toString(16).slice(1);
    return out;
  }

  function roleLabel(role) {
    return ROLE_LABELS[role] || role;
  }

  function rolesText(roles) {
    return (roles || []).map(roleLabel).join("、");
  }

  function deptLabel(dept) {
    return dept ? DEPT_LABELS[dept] || dept : "";
  }

  /** A message's time in the browser's zone: HH:MM today, with the date before it otherwise (and the year when
   * it is not this year's). */
  function timeText(iso, now) {
    if (!iso) return "";
    var d = new Date(iso);
    if (isNaN(d.getTime())) return "";
    now = now || new Date();
    var hm = String(d.getHours()).padStart(2, "0") + ":" + String(d.getMinutes()).padStart(2, "0");
    if (d.toDateString() === now.toDateString()) return hm;
    var day = d.getMonth() + 1 + "月" + d.getDate() + "日 " + hm;
    return d.getFullYear() === now.getFullYear() ? day : d.getFullYear() + "年" + day;
  }

  function timeElement(iso) {
    var t = timeText(iso);
    if (!t) return null;
    var meta = document.createElement("time");
    meta.className = "msg-time";
    meta.setAttribute("datetime", iso);
    meta.textContent = t;
    return meta;
  }

  var toastTimer = null;
  function toast(text) {
    var el = $("toast");
    el.textContent = text;
    el.hidden = false;
    clearTimeout(toastTimer);
    toastTimer = setTimeout(function () {
      el.hidden = true;
    }, 4000);
  }

  function setBanner(text) {
    var el = $("conn-banner");
    if (text) {
      el.textContent = text;
      el.hidden = false;
    } else {
      el.hidden = true;
    }
  }

  // ---- HTTP ----------------------------------------------------------------------------------
  function HttpError(status, message) {
    this.status = status;
    this.message = message;
  }

  /** fetch JSON; resolves to the parsed body, rejects with HttpError (status 0 = network). */
  function api(method, path, body, signal) {
    var opts = {
      method: method,
      credentials: "same-origin",
      headers: { Accept: "application/json" },
      cache: "no-store",
    };
    if (signal) opts.signal = signal;
    if (body !== undefined) {
      opts.headers["Content-Type"] = "application/json";
      opts.body = JSON.stringify(body);
    }
    return fetch(API + path, opts).then(
      function (resp) {
        return resp
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            if (!resp.ok) {
              if (resp.status === 401) onUnauthorized();
              throw new HttpError(resp.status, (data && data.error) || "HTTP " + resp.status);
            }
            return data;
          });
      },
      function (err) {
        if (err && err.name === "AbortError") throw err;
        throw new HttpError(0, "network");
      }
    );
  }

  /** POST a user action; retry network errors / 5xx with the SAME body (same client_id). */
  function postAction(path, body) {
    var attempt = 0;
    function go() {
      attempt += 1;
      return api("POST", path, body).catch(function (err) {
        var retriable = err instanceof HttpError && (err.status === 0 || err.status >= 500);
        if (retriable && attempt < SEND_ATTEMPTS) {
          return sleep(500 * Math.pow(2, attempt - 1)).then(go);
        }
        throw err;
      });
    }
    return go();
  }

  // Replace what ``box`` shows by an error line and a 重试 button that calls ``again``.
  function showRetry(box, message, again) {
    box.textContent = "";
    var p = document.createElement("p");
    p.className = "form-error";
    p.textContent = message;
    var retry = document.createElement("button");
    retry.type = "button";
    retry.className = "btn-small";
    retry.textContent = "重试";
    retry.addEventListener("click", again);
    box.appendChild(p);
    box.appendChild(retry);
  }

  function failText(err) {
    if (!(err instanceof HttpError)) return "出错了，请重试。";
    if (err.status === 0) return "网络不通，发送失败。请检查网络后重试。";
    if (err.status === 401) return "登录已失效，请重新登录。";
    if (err.status === 400 || err.status === 415) return "内容无效：" + err.message;
    if (err.status === 413) return "内容太大，无法发送。";
    if (err.status === 429) return err.message || "操作太频繁，请稍后再试。";
    return "服务器暂时不可用（" + err.status + "），请稍后重试。";
  }

  // ---- screens -------------------------------------------------------------------------------
  function showScreen(name) {
    ["loading", "signin", "chat"].forEach(function (n) {
      $("screen-" + n).hidden = n !== name;
    });
    $("app").setAttribute("data-state", name);
  }

  function onUnauthorized() {
    if (!state.user && $("app").getAttribute("data-state") === "signin") return;
    stopPolling();
    state.user = null;
    showSignin("登录已失效，请重新登录。");
  }

  function showSignin(errorText) {
    state.user = null;
    $("whoami").hidden = true;
    $("logout").hidden = true;
    var err = $("signin-error");
    err.textContent = errorText || "";
    err.hidden = !errorText;
    showScreen("signin");
    if (DEMO) {
      loadUsers();
    } else {
      var input = $("token-input");
      if (input) input.focus();
    }
  }

  // The chips of the person's roles, as the server decided them (帮助 last, pinned outside the scrolling row).
  function renderChips(chips) {
    var row = $("chips-roles");
    row.textContent = "";
    var help = $("chip-help");
    (chips || []).forEach(function (c) {
      if (c.text === help.getAttribute("data-text")) {
        help.textContent = c.label;
        return;
      }
      var b = document.createElement("button");
      b.type = "button";
      b.className = "chip";
      b.setAttribute("data-text", c.text);
      b.textContent = c.label;
      row.appendChild(b);
    });
    row.scrollLeft = 0;
  }

  function showChat(user) {
    state.user = user;
    $("whoami-name").textContent = user.name;
    $("whoami-roles").textContent = rolesText(user.roles);
    renderChips(user.chips);
    var rep = !(user.roles && user.roles.length) || user.roles.indexOf("rep") >= 0;
    $("empty-hint-rep").hidden = !rep;
    $("empty-hint-other").hidden = rep;
    $("whoami").hidden = false;
    $("logout").hidden = false;
    $("messages").textContent = "";
    state.pending = [];
    state.cursor = 0;
    closeLocation();
    showScreen("chat");
    startPolling();
    $("composer-input").focus();
  }

  // ---- sign-in -------------------------------------------------------------------------------
  function loadUsers() {
    var list = $("user-list");
    api("GET", "/users")
      .then(function (data) {
        renderUsers(data.users || []);
      })
      .catch(function (err) {
        showRetry(list, "加载人员失败：" + failText(err), loadUsers);
      });
  }

  function primaryRole(u) {
    var roles = u.roles || [];
    for (var i = 0; i < ROLE_ORDER.length; i++) {
      if (roles.indexOf(ROLE_ORDER[i]) >= 0) return ROLE_ORDER[i];
    }
    return roles[0] || "other";
  }

  function renderUsers(users) {
    var list = $("user-list");
    list.textContent = "";
    if (!users.length) {
      var p = document.createElement("p");
      p.className = "muted";
      p.textContent = "还没有人员数据。";
      list.appendChild(p);
      return;
    }
    var groups = {};
    users.forEach(function (u) {
      var r = primaryRole(u);
      (groups[r] = groups[r] || []).push(u);
    });
    var order = ROLE_ORDER.filter(function (r) {
      return groups[r];
    });
    Object.keys(groups).forEach(function (r) {
      if (order.indexOf(r) < 0) order.push(r);
    });
    order.forEach(function (role) {
      var section = document.createElement("section");
      section.className = "user-group";
      var h = document.createElement("h2");
      h.className = "user-group-title";
      h.textContent = role === "other" ? "其他" : roleLabel(role);
      section.appendChild(h);
      groups[role].forEach(function (u) {
        var b = document.createElement("button");
        b.type = "button";
        b.className = "user-pick";
        b.setAttribute("data-testid", "user-pick-" + u.id);
        b.setAttribute("data-user-id", u.id);
        var avatar = document.createElement("span");
        avatar.className = "avatar";
        avatar.setAttribute("aria-hidden", "true");
        avatar.textContent = (u.name || u.id).slice(-2);
        var text = document.createElement("span");
        text.className = "user-pick-text";
        var name = document.createElement("span");
        name.className = "user-pick-name";
        name.textContent = u.name;
        var meta = document.createElement("span");
        meta.className = "user-pick-meta";
        meta.textContent = [rolesText(u.roles), deptLabel(u.department)]
          .filter(Boolean)
          .join(" · ");
        text.appendChild(name);
        text.appendChild(meta);
        b.appendChild(avatar);
        b.appendChild(text);
        b.addEventListener("click", function () {
          login({ user_id: u.id }, b);
        });
        section.appendChild(b);
      });
      list.appendChild(section);
    });
  }

  function login(body, button) {
    var err = $("signin-error");
    err.hidden = true;
    if (button) button.disabled = true;
    api("POST", "/login", body)
      .then(function (data) {
        showChat(data.user);
      })
      .catch(function (e) {
        err.textContent =
          e instanceof HttpError && e.status === 401
            ? DEMO
              ? "无法以该身份登录。"
              : "令牌无效或已过期，请向管理员重新获取。"
            : failText(e);
        err.hidden = false;
      })
      .then(function () {
        if (button) button.disabled = false;
      });
  }

  function logout() {
    stopPolling();
    api("POST", "/logout")
      .catch(function () {
        /* the cookie is cleared server-side; nothing else to do */
      })
      .then(function () {
        $("messages").textContent = "";
        showSignin();
      });
  }

  // ---- rendering -----------------------------------------------------------------------------
  function nearBottom() {
    var m = $("messages");
    return m.scrollHeight - m.scrollTop - m.clientHeight < 80;
  }

  function scrollToBottom() {
    var m = $("messages");
    m.scrollTop = m.scrollHeight;
  }

  function findCard(ref) {
    if (!ref) return null;
    var cards = $("messages").querySelectorAll(".card[data-card-ref]");
    for (var i = cards.length - 1; i >= 0; i--) {
      if (cards[i].getAttribute("data-card-ref") === ref) return cards[i];
    }
    return null;
  }

  // ``at``: the time shown under it (an updated card keeps the time it first arrived).
  function cardWrapper(item, at) {
    var wrap = document.createElement("div");
    wrap.className = "msg bot msg-card";
    wrap.setAttribute("data-id", item.id);
    wrap.innerHTML = item.html || "";
    var card = wrap.querySelector(".card");
    if (card && item.card_ref && !card.getAttribute("data-card-ref")) {
      card.setAttribute("data-card-ref", item.card_ref);
    }
    var meta = timeElement(at || item.at);
    if (meta) wrap.appendChild(meta);
    return wrap;
  }

  function textBubble(item) {
    var from = item.from === "user" ? "user" : "bot";
    var wrap = document.createElement("div");
    wrap.className = "msg " + from;
    wrap.setAttribute("data-id", item.id);
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = item.text || "";
    if (item.media_url && /^\/console\/media\/[A-Za-z0-9_-]{16,64}$/.test(item.media_url)) {
      // A photo or file passed on by the bot (a task card's attachment): shown inline, opened in a new tab.
      var link = document.createElement("a");
      link.href = item.media_url;
      link.target = "_blank";
      link.rel = "noopener";
      if (item.media_type === "image") {
        var img = document.createElement("img");
        img.src = item.media_url;
        img.alt = item.text || "";
        img.className = "msg-image";
        link.appendChild(img);
      } else {
        link.textContent = "📎 打开文件";
      }
      bubble.appendChild(document.createElement("br"));
      bubble.appendChild(link);
    }
    wrap.appendChild(bubble);
    var meta = timeElement(item.at);
    if (meta) wrap.appendChild(meta);
    return wrap;
  }

  function takePending(text) {
    for (var i = 0; i < state.pending.length; i++) {
      if (state.pending[i].text === text) {
        var p = state.pending[i];
        state.pending.splice(i, 1);
        return p;
      }
    }
    return null;
  }

  function renderItem(item) {
    var box = $("messages");
    if (item.kind === "card_update") {
      var old = findCard(item.card_ref);
      if (old) {
        var oldWrap = old.closest(".msg") || old;
        var oldTime = oldWrap.querySelector(":scope > time.msg-time");
        var fresh = cardWrapper(item, oldTime ? oldTime.getAttribute("datetime") : null);
        fresh.classList.add("updated");
        oldWrap.replaceWith(fresh);
        return;
      }
      box.appendChild(cardWrapper(item));
      return;
    }
    if (item.kind === "rich") {
      // Server-rendered and escaped (cards/rich.py to_html), like a card's HTML.
      var rich = cardWrapper(item);
      rich.className = "msg bot msg-rich";
      box.appendChild(rich);
      return;
    }
    if (item.kind === "card") {
      box.appendChild(cardWrapper(item));
      return;
    }
    var el = textBubble(item);
    if (item.from === "user") {
      var p = takePending(item.text || "");
      if (p && p.el.parentNode) {
        p.el.replaceWith(el);
        return;
      }
    }
    box.appendChild(el);
  }

  function renderItems(items) {
    if (!items.length) return;
    var stick = nearBottom();
    var hasUser = false;
    items.forEach(function (item) {
      if (typeof item.id === "number" && item.id <= state.cursor) return; // already shown
      try {
        renderItem(item);
      } catch (e) {
        if (window.console) console.error("cannot render item", item, e);
      }
      if (typeof item.id === "number") state.cursor = item.id;
      if (item.from === "user") hasUser = true;
    });
    updateEmptyHint();
    if (stick || hasUser) scrollToBottom();
  }

  function updateEmptyHint() {
    $("empty-hint").hidden = $("messages").children.length > 0;
  }

  // ---- long-poll -----------------------------------------------------------------------------
  function stopPolling() {
    state.pollGen += 1;
    if (state.pollAbort) {
      try {
        state.pollAbort.abort();
      } catch (e) {
        /* ignore */
      }
      state.pollAbort = null;
    }
    setBanner("");
  }

  function startPolling() {
    stopPolling();
    var gen = state.pollGen;
    pollLoop(gen);
  }

  async function pollLoop(gen) {
    var backoff = POLL_BACKOFF_MIN;
    var first = true;
    while (gen === state.pollGen) {
      var ctrl = typeof AbortController === "function" ? new AbortController() : null;
      state.pollAbort = ctrl;
      try {
        // The first fetch returns at once (history, or nothing), later ones wait for news.
        var q = "/updates?after=" + encodeURIComponent(state.cursor) + (first ? "&wait=0" : "");
        var data = await api("GET", q, undefined, ctrl ? ctrl.signal : undefined);
        if (gen !== state.pollGen) return;
        renderItems(data.items || []);
        if (first) {
          updateEmptyHint();
          scrollToBottom();
        }
        first = false;
        backoff = POLL_BACKOFF_MIN;
        setBanner("");
      } catch (err) {
        if (gen !== state.pollGen) return;
        if (err instanceof HttpError && err.status === 401) return; // onUnauthorized took over
        setBanner("连接中断，正在重新连接…");
        await sleep(backoff + Math.floor(Math.random() * 300));
        backoff = Math.min(backoff * 2, POLL_BACKOFF_MAX);
      }
    }
  }

  // ---- sending -------------------------------------------------------------------------------
  function addPending(text) {
    var wrap = document.createElement("div");
    wrap.className = "msg user pending";
    var bubble = document.createElement("div");
    bubble.className = "bubble";
    bubble.textContent = text;
    wrap.appendChild(bubble);
    $("messages").appendChild(wrap);
    updateEmptyHint();
    scrollToBottom();
    var p = { text: text, el: wrap };
    state.pending.push(p);
    return p;
  }

  function markFailed(p, body, err) {
    var idx = state.pending.indexOf(p);
    if (idx >= 0) state.pending.splice(idx, 1);
    p.el.classList.remove("pending");
    p.el.classList.add("failed");
    var row = document.createElement("div");
    row.className = "msg-fail";
    var why = document.createElement("span");
    why.textContent = failText(err);
    row.appendChild(why);
    if (!(err instanceof HttpError) || err.status === 0 || err.status >= 500) {
      var retry = document.createElement("button");
      retry.type = "button";
      retry.className = "link-btn";
      retry.textContent = "重试";
      retry.addEventListener("click", function () {
        row.remove();
        p.el.classList.remove("failed");
        p.el.classList.add("pending");
        state.pending.push(p);
        // Same body → same client_id: the server drops it if the first attempt did land.
        postAction("/send", body).then(
          function () {
            p.el.classList.remove("pending");
          },
          function (e) {
            markFailed(p, body, e);
          }
        );
      });
      row.appendChild(retry);
    }
    p.el.appendChild(row);
  }

  function sendText(text) {
    text = (text || "").trim();
    if (!text || !state.user) return;
    if (text.length > 2000) {
      toast("消息太长（最多 2000 字）。");
      return;
    }
    var body = { client_id: newClientId(), text: text };
    var p = addPending(text);
    postAction("/send", body).then(
      function () {
        p.el.classList.remove("pending"); // accepted; its echo from the feed replaces it
      },
      function (err) {
        if (err instanceof HttpError && err.status === 401) return;
        markFailed(p, body, err);
      }
    );
  }

  // Enter that commits a pinyin candidate must not send (Safari submits on it after compositionend).
  var imeEnterAt = 0;
  function onComposerKeydown(ev) {
    if (ev.key === "Enter" && (ev.isComposing || ev.keyCode === 229)) imeEnterAt = Date.now();
  }

  function onComposerSubmit(ev) {
    ev.preventDefault();
    if (Date.now() - imeEnterAt < 100) return;
    var input = $("composer-input");
    var text = input.value;
    if (!text.trim()) {
      input.focus();
      return;
    }
    input.value = "";
    input.focus();
    sendText(text);
  }

  // ---- card buttons --------------------------------------------------------------------------
  function onMessagesClick(ev) {
    var btn = ev.target.closest("button[data-payload]");
    if (!btn || btn.disabled) return;
    var card = btn.closest(".card");
    if (!card) return;
    var buttons = card.querySelectorAll("button");
    buttons.forEach(function (b) {
      b.disabled = true;
    });
    btn.classList.add("busy");
    var body = {
      client_id: newClientId(),
      payload: btn.getAttribute("data-payload"),
      card_ref: card.getAttribute("data-card-ref") || "",
    };
    var unlock = function () {
      // The card may already have been replaced by its update; then these nodes are gone anyway.
      btn.classList.remove("busy");
      buttons.forEach(function (b) {
        b.disabled = false;
      });
    };
    var started = Date.now();
    postAction("/action", body).then(
      function () {
        setTimeout(unlock, Math.max(0, BUTTON_LOCK_MS - (Date.now() - started)));
      },
      function (err) {
        unlock();
        if (!(err instanceof HttpError && err.status === 401)) toast("操作失败：" + failText(err));
      }
    );
  }

  // ---- location ------------------------------------------------------------------------------
  function openLocation() {
    var panel = $("location-panel");
    panel.hidden = false;
    $("location-open").setAttribute("aria-expanded", "true");
    setLocStatus("");
    if (DEMO && !state.placesLoaded) loadPlaces();
    $("loc-browser").focus();
  }

  function closeLocation() {
    $("location-panel").hidden = true;
    $("location-open").setAttribute("aria-expanded", "false");
  }

  function setLocStatus(text, isError) {
    var el = $("loc-status");
    el.textContent = text;
    el.classList.toggle("error", !!isError);
  }

  function loadPlaces() {
    var select = $("loc-place");
    if (!select) return;
    api("GET", "/places")
      .then(function (data) {
        state.placesLoaded = true;
        (data.places || []).forEach(function (pl, i) {
          var opt = document.createElement("option");
          opt.value = String(i);
          opt.textContent = pl.name;
          opt.setAttribute("data-lat", pl.latitude);
          opt.setAttribute("data-lng", pl.longitude);
          opt.setAttribute("data-name", pl.name);
          select.appendChild(opt);
        });
      })
      .catch(function (err) {
        setLocStatus("加载医院列表失败：" + failText(err), true);
      });
  }

  function sendLocation(lat, lng, label) {
    if (!isFinite(lat) || !isFinite(lng) || lat < -90 || lat > 90 || lng < -180 || lng > 180) {
      setLocStatus("坐标无效：纬度应在 -90～90，经度应在 -180～180。", true);
      return;
    }
    var body = { client_id: newClientId(), latitude: lat, longitude: lng, label: label || "" };
    setLocStatus("正在发送位置…");
    postAction("/location", body).then(
      function () {
        setLocStatus("");
        closeLocation();
        $("composer-input").focus();
      },
      function (err) {
        setLocStatus("位置发送失败：" + failText(err), true);
      }
    );
  }

  // ---- attachments ---------------------------------------------------------------------------
  var UPLOAD_MAX = Number(document.body.getAttribute("data-upload-max")) || 5 * 1024 * 1024;

  /** Upload a photo or file as a message (the raw body; the server stores it and tells the bot). */
  function sendFile(file) {
    if (!file) return;
    if (file.size > UPLOAD_MAX) {
      var mb = UPLOAD_MAX / (1024 * 1024);
      toast("文件超过 " + (mb >= 10 || mb === Math.floor(mb) ? mb.toFixed(0) : mb.toFixed(1)) + " MB，请压缩后再发。");
      return;
    }
    var query = "?client_id=" + encodeURIComponent(newClientId()) + "&name=" + encodeURIComponent(file.name);
    fetch(API + "/media" + query, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": file.type || "application/octet-stream", Accept: "application/json" },
      body: file,
    }).then(
      function (resp) {
        if (resp.status === 401) {
          onUnauthorized();
          return;
        }
        if (resp.ok) return;
        // Refusals (too large, today's quota) carry a short message for the person.
        return resp
          .json()
          .catch(function () {
            return {};
          })
          .then(function (data) {
            toast((data && data.error) || "文件发送失败（" + resp.status + "），请重试。");
          });
      },
      function () {
        toast("网络不通，文件发送失败。");
      }
    );
  }

  function useBrowserLocation() {
    if (!navigator.geolocation) {
      setLocStatus("此浏览器不支持定位，请手动输入坐标。", true);
      return;
    }
    if (window.isSecureContext === false) {
      setLocStatus("浏览器只在 HTTPS 页面允许定位，请手动输入坐标。", true);
      return;
    }
    var btn = $("loc-browser");
    btn.disabled = true;
    setLocStatus("正在获取定位…");
    navigator.geolocation.getCurrentPosition(
      function (pos) {
        btn.disabled = false;
        var c = pos.coords;
        $("loc-lat").value = c.latitude.toFixed(6);
        $("loc-lng").value = c.longitude.toFixed(6);
        sendLocation(c.latitude, c.longitude, "");
      },
      function (err) {
        btn.disabled = false;
        var why =
          err && err.code === 1
            ? "你拒绝了定位权限"
            : err && err.code === 3
              ? "定位超时"
              : "无法获取位置";
        setLocStatus(why + "，请在浏览器设置中允许定位，或手动输入坐标。", true);
      },
      { enableHighAccuracy: true, timeout: 15000, maximumAge: 60000 }
    );
  }

  function parseCoord(v) {
    v = (v || "").trim().replace("，", ",");
    return v === "" ? NaN : Number(v);
  }

  // ---- wiring --------------------------------------------------------------------------------
  function wire() {
    $("composer").addEventListener("submit", onComposerSubmit);
    $("composer-input").addEventListener("keydown", onComposerKeydown);
    $("messages").addEventListener("click", onMessagesClick);
    $("logout").addEventListener("click", logout);
    $("chips").addEventListener("click", function (ev) {
      var chip = ev.target.closest(".chip[data-text]");
      if (!chip) return;
      sendText(chip.getAttribute("data-text"));
      $("composer-input").focus();
    });
    $("location-open").addEventListener("click", function () {
      if ($("location-panel").hidden) openLocation();
      else closeLocation();
    });
    $("location-close").addEventListener("click", function () {
      closeLocation();
      $("composer-input").focus();
    });
    $("loc-browser").addEventListener("click", useBrowserLocation);
    $("attach-input").addEventListener("change", function (ev) {
      sendFile(ev.target.files && ev.target.files[0]);
      ev.target.value = "";
    });
    $("loc-coords-send").addEventListener("click", function () {
      sendLocation(parseCoord($("loc-lat").value), parseCoord($("loc-lng").value), "");
    });
    var place = $("loc-place");
    if (place) {
      place.addEventListener("change", function () {
        $("loc-place-send").disabled = !place.value;
      });
      $("loc-place-send").addEventListener("click", function () {
        var opt = place.options[place.selectedIndex];
        if (!opt || !opt.value) return;
        sendLocation(
          Number(opt.getAttribute("data-lat")),
          Number(opt.getAttribute("data-lng")),
          opt.getAttribute("data-name")
        );
      });
    }
    document.addEventListener("keydown", function (ev) {
      if (ev.key === "Escape" && !$("location-panel").hidden) {
        closeLocation();
        $("composer-input").focus();
      }
    });
    var form = $("token-form");
    if (form) {
      form.addEventListener("submit", function (ev) {
        ev.preventDefault();
        var token = $("token-input").value.trim();
        if (!token) return;
        login({ token: token }, $("token-submit"));
      });
    }
  }

  function boot() {
    wire();
    showScreen("loading");
    api("GET", "/me").then(
      function (data) {
        if (data.user) showChat(data.user);
        else showSignin();
      },
      function (err) {
        if (err instanceof HttpError && err.status === 401) return;
        showRetry($("screen-loading"), "无法连接服务器：" + failText(err), function () {
          window.location.reload();
        });
      }
    );
  }

  boot();
})();
