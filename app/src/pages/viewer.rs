//! The radiograph viewer of the case page: the case's views side by side,
//! each in its own pane: window/level by dragging (left button; horizontal
//! = width, vertical = level) and by presets, zoom (wheel, buttons,
//! `+`/`-`), pan (shift-drag, middle or right button, arrow keys), reset,
//! full screen, and — for the roles that see AI output once the prediction
//! is locked — the heat-map overlay. The pixels are windowed on the server
//! in modality units from the stored object
//! (`/images/{sha}/preview.png?wc=&ww=`), so the reader works on the full
//! bit depth, not on an 8-bit picture. While the mouse moves, the picture
//! on screen is re-mapped at once by a linear SVG filter (the new window
//! expressed in the old one's display values); when the button is released
//! the exact rendering replaces it.
//!
//! Without JavaScript the panes show the default window.

use crate::i18n::t;
use leptos::prelude::*;

/// What the viewer knows of an image's pixel values (modality units), as
/// `/images/{sha}/window.json` gives it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WindowInfo {
    pub centre: f64,
    pub width: f64,
    pub min: f64,
    pub max: f64,
    pub monochrome1: bool,
}

/// A window in modality units.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Win {
    pub centre: f64,
    pub width: f64,
}

/// The window presets, keys `1`–`4`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Preset {
    /// The file's own window (or the 0.5–99.5th percentile range).
    Default,
    /// Every value from the smallest to the largest.
    Full,
    /// Half the default width over the upper (bright, bone) half.
    Bone,
    /// Half the default width over the lower (soft-tissue) half.
    Soft,
}

impl Preset {
    pub const ALL: [Preset; 4] = [Preset::Default, Preset::Full, Preset::Bone, Preset::Soft];

    pub fn key(self) -> &'static str {
        match self {
            Preset::Default => "default",
            Preset::Full => "full",
            Preset::Bone => "bone",
            Preset::Soft => "soft",
        }
    }

    pub fn window(self, info: &WindowInfo) -> Win {
        let d = Win {
            centre: info.centre,
            width: info.width.max(1.0),
        };
        // For MONOCHROME1 low values are bright: bone is the lower half.
        let bone_up = if info.monochrome1 { -1.0 } else { 1.0 };
        match self {
            Preset::Default => d,
            Preset::Full => Win {
                centre: (info.min + info.max) / 2.0 + 0.5,
                width: (info.max - info.min + 1.0).max(1.0),
            },
            Preset::Bone => Win {
                centre: d.centre + bone_up * d.width / 4.0,
                width: (d.width / 2.0).max(1.0),
            },
            Preset::Soft => Win {
                centre: d.centre - bone_up * d.width / 4.0,
                width: (d.width / 2.0).max(1.0),
            },
        }
    }
}

/// A window after a drag of `dx`, `dy` screen pixels from `start`: right
/// widens, down raises the level; one pixel moves by 1/400 of the value
/// range, so a drag across the pane spans about the whole range.
pub fn drag_window(start: Win, info: &WindowInfo, dx: f64, dy: f64) -> Win {
    let step = ((info.max - info.min).abs().max(1.0)) / 400.0;
    Win {
        centre: start.centre + dy * step,
        width: (start.width + dx * step).max(1.0),
    }
}

/// The linear map of display values (0–1) that turns an image rendered
/// through `shown` into one rendered through `wanted` (exact inside
/// `shown`'s range; values clipped by `shown` stay clipped until the new
/// rendering arrives): `(slope, intercept)` for an SVG `feFuncX`.
pub fn remap(shown: Win, wanted: Win, monochrome1: bool) -> (f64, f64) {
    // v = (x − (c − w/2)) / w for both windows, solved for v_wanted(v_shown).
    let (c0, w0) = (shown.centre, shown.width.max(1.0));
    let (c1, w1) = (wanted.centre, wanted.width.max(1.0));
    let slope = w0 / w1;
    let intercept = (c0 - w0 / 2.0 - c1 + w1 / 2.0) / w1;
    if monochrome1 {
        // Displayed d = 1 − v on both sides.
        (slope, 1.0 - slope - intercept)
    } else {
        (slope, intercept)
    }
}

/// The zoom range of a pane.
pub const ZOOM_MIN: f64 = 0.25;
pub const ZOOM_MAX: f64 = 16.0;

pub fn zoomed(zoom: f64, factor: f64) -> f64 {
    (zoom * factor).clamp(ZOOM_MIN, ZOOM_MAX)
}

/// The preview URL of a stored object through a window (or the default).
pub fn image_url(sha256: &str, window: Option<Win>) -> String {
    match window {
        None => format!("/images/{sha256}/preview.png?size=2048"),
        Some(w) => format!(
            "/images/{sha256}/preview.png?size=2048&wc={:.1}&ww={:.1}",
            w.centre,
            w.width.max(1.0)
        ),
    }
}

/// One view for the viewer.
#[derive(Debug, Clone, PartialEq)]
pub struct ViewerImage {
    pub sha256: String,
    /// The caption: view, modality, size.
    pub caption: String,
    /// The heat-map overlay, for the roles that may see it.
    pub heatmap: Option<String>,
}

/// The views of a case side by side.
#[component]
pub fn Viewer(images: Vec<ViewerImage>) -> impl IntoView {
    let any_heatmap = images.iter().any(|i| i.heatmap.is_some());
    view! {
        <div class="viewer" id="viewer">
            {images.into_iter().enumerate().map(|(n, image)| view! { <Pane n=n image=image/> }).collect_view()}
        </div>
        <p class="muted small" id="viewer-help">{t("viewer.help")}
            {any_heatmap.then(|| view! { " " {t("viewer.help_heatmap")} })}</p>
    }
}

/// A drag in progress: panning (else windowing), where it started, and the
/// window and pan at its start.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Drag {
    panning: bool,
    x: f64,
    y: f64,
    window: Win,
    pan: (f64, f64),
}

#[component]
fn Pane(n: usize, image: ViewerImage) -> impl IntoView {
    let info: RwSignal<Option<WindowInfo>> = RwSignal::new(None);
    // The window of the rendering on screen (None: the default), and the
    // window the reader is setting.
    let shown: RwSignal<Option<Win>> = RwSignal::new(None);
    let live: RwSignal<Option<Win>> = RwSignal::new(None);
    // The window of the picture actually on screen (it changes when the
    // requested rendering has loaded).
    let displayed: RwSignal<Option<Win>> = RwSignal::new(None);
    let zoom = RwSignal::new(1.0_f64);
    let pan = RwSignal::new((0.0_f64, 0.0_f64));
    let heat = RwSignal::new(false);
    let drag: RwSignal<Option<Drag>> = RwSignal::new(None);
    let pane_ref = NodeRef::<leptos::html::Figure>::new();
    let sha = image.sha256.clone();
    let has_heatmap = image.heatmap.is_some();

    #[cfg(feature = "hydrate")]
    {
        let sha = sha.clone();
        Effect::new(move |_| {
            let sha = sha.clone();
            leptos::task::spawn_local(async move {
                if let Some(i) = browser::window_info(&sha).await {
                    info.set(Some(i));
                }
            });
        });
    }

    let current = move || {
        live.get()
            .or(shown.get())
            .or_else(|| info.get().map(|i| Preset::Default.window(&i)))
    };
    let commit = move || {
        if let Some(w) = live.get_untracked() {
            if shown.get_untracked() != Some(w) {
                shown.set(Some(w));
            }
        }
    };
    let set_window = move |w: Win| {
        live.set(Some(w));
        shown.set(Some(w));
    };
    let reset = move || {
        zoom.set(1.0);
        // `displayed` follows when the default rendering has loaded.
        pan.set((0.0, 0.0));
        live.set(None);
        shown.set(None);
    };
    let preset = move |p: Preset| {
        if let Some(i) = info.get_untracked() {
            set_window(p.window(&i));
        }
    };
    let fullscreen = move || {
        #[cfg(feature = "hydrate")]
        if let Some(el) = pane_ref.get_untracked() {
            browser::toggle_fullscreen(&el);
        }
    };

    let src = {
        let sha = sha.clone();
        move || image_url(&sha, shown.get())
    };
    // The on-screen re-mapping while the window is being dragged.
    let filter_id = format!("wl-{n}");
    let transfer = move || {
        let (Some(i), Some(w)) = (info.get(), live.get()) else {
            return (1.0, 0.0);
        };
        let base = displayed
            .get()
            .unwrap_or_else(|| Preset::Default.window(&i));
        remap(base, w, i.monochrome1)
    };
    let slope = move || format!("{:.5}", transfer().0);
    let intercept = move || format!("{:.5}", transfer().1);
    let frame_style = move || {
        let (x, y) = pan.get();
        format!(
            "transform: translate({x:.0}px, {y:.0}px) scale({:.3});",
            zoom.get()
        )
    };
    let filter_style = format!("filter: url(#{filter_id});");
    let readout = move || {
        let z = format!("{:.0}%", zoom.get() * 100.0);
        match current() {
            Some(w) => format!("C {:.0} · W {:.0} · {z}", w.centre, w.width),
            None => z,
        }
    };

    let on_key = move |ev: leptos::ev::KeyboardEvent| {
        let key = ev.key();
        let handled = match key.as_str() {
            "+" | "=" => {
                zoom.update(|z| *z = zoomed(*z, 1.25));
                true
            }
            "-" | "_" => {
                zoom.update(|z| *z = zoomed(*z, 0.8));
                true
            }
            "ArrowLeft" => {
                pan.update(|p| p.0 -= 40.0);
                true
            }
            "ArrowRight" => {
                pan.update(|p| p.0 += 40.0);
                true
            }
            "ArrowUp" => {
                pan.update(|p| p.1 -= 40.0);
                true
            }
            "ArrowDown" => {
                pan.update(|p| p.1 += 40.0);
                true
            }
            "0" | "r" | "R" => {
                reset();
                true
            }
            "f" | "F" => {
                fullscreen();
                true
            }
            "h" | "H" if has_heatmap => {
                heat.update(|h| *h = !*h);
                true
            }
            "1" | "2" | "3" | "4" => {
                let k = key.parse::<usize>().unwrap_or(1) - 1;
                preset(Preset::ALL[k]);
                true
            }
            _ => false,
        };
        if handled {
            ev.prevent_default();
        }
    };
    let on_down = move |ev: leptos::ev::PointerEvent| {
        let Some(i) = info.get_untracked() else {
            return;
        };
        let panning = ev.shift_key() || ev.button() != 0;
        let start = live
            .get_untracked()
            .or(shown.get_untracked())
            .unwrap_or_else(|| Preset::Default.window(&i));
        drag.set(Some(Drag {
            panning,
            x: f64::from(ev.client_x()),
            y: f64::from(ev.client_y()),
            window: start,
            pan: pan.get_untracked(),
        }));
        ev.prevent_default();
        #[cfg(feature = "hydrate")]
        {
            browser::capture_pointer(&ev);
            if let Some(el) = pane_ref.get_untracked() {
                let _ = el.focus();
            }
        }
    };
    let on_move = move |ev: leptos::ev::PointerEvent| {
        let (Some(d), Some(i)) = (drag.get_untracked(), info.get_untracked()) else {
            return;
        };
        let (dx, dy) = (
            f64::from(ev.client_x()) - d.x,
            f64::from(ev.client_y()) - d.y,
        );
        if d.panning {
            pan.set((d.pan.0 + dx, d.pan.1 + dy));
        } else {
            live.set(Some(drag_window(d.window, &i, dx, dy)));
        }
    };
    let on_up = move |_ev: leptos::ev::PointerEvent| {
        if drag.get_untracked().is_some() {
            drag.set(None);
            commit();
        }
    };
    let on_wheel = move |ev: leptos::ev::WheelEvent| {
        ev.prevent_default();
        let factor = if ev.delta_y() < 0.0 { 1.1 } else { 1.0 / 1.1 };
        zoom.update(|z| *z = zoomed(*z, factor));
    };

    let heat_src = image.heatmap.clone();
    view! {
        <figure class="pane" node_ref=pane_ref tabindex="0" data-sha=sha.clone() on:keydown=on_key>
            <svg class="filters" width="0" height="0" aria-hidden="true">
                <filter id=filter_id color-interpolation-filters="sRGB">
                    <feComponentTransfer>
                        <feFuncR type="linear" slope=slope intercept=intercept/>
                        <feFuncG type="linear" slope=slope intercept=intercept/>
                        <feFuncB type="linear" slope=slope intercept=intercept/>
                    </feComponentTransfer>
                </filter>
            </svg>
            <div class="stage" on:pointerdown=on_down on:pointermove=on_move on:pointerup=on_up
                on:pointercancel=on_up on:wheel=on_wheel on:contextmenu=|ev| ev.prevent_default()>
              <div class="frame" style=frame_style>
                <img class="radiograph" src=src alt=image.caption.clone() draggable="false" style=filter_style
                    on:load=move |_| {
                        // The exact rendering has arrived: no re-mapping left.
                        let now = shown.get_untracked();
                        displayed.set(now);
                        if live.get_untracked() == now { live.set(None) }
                    }/>
                {heat_src.map(|h| view! {
                    <img class="heat-overlay" src=h alt=t("ai.heatmap") draggable="false"
                        style:display=move || if heat.get() { "block" } else { "none" }/>
                })}
              </div>
            </div>
            <figcaption>
                <span class="caption">{image.caption.clone()}</span>
                <span class="readout">{readout}</span>
                <span class="tools">
                    <select class="preset" aria-label=t("viewer.preset")
                        on:change=move |ev| {
                            let v = event_target_value(&ev);
                            if let Some(p) = Preset::ALL.into_iter().find(|p| p.key() == v) { preset(p) }
                        }>
                        {Preset::ALL.into_iter().map(|p| view! {
                            <option value=p.key()>{t(&format!("viewer.preset_{}", p.key()))}</option>
                        }).collect_view()}
                    </select>
                    <button type="button" class="zoom-in" title=t("viewer.zoom_in") on:click=move |_| zoom.update(|z| *z = zoomed(*z, 1.25))>"+"</button>
                    <button type="button" class="zoom-out" title=t("viewer.zoom_out") on:click=move |_| zoom.update(|z| *z = zoomed(*z, 0.8))>"−"</button>
                    <button type="button" class="reset" title=t("viewer.reset") on:click=move |_| reset()>{t("viewer.reset")}</button>
                    <button type="button" class="fullscreen" title=t("viewer.fullscreen") on:click=move |_| fullscreen()>"⛶"</button>
                    {has_heatmap.then(|| view! {
                        <label class="heat-toggle"><input type="checkbox" class="heat"
                            prop:checked=move || heat.get()
                            on:change=move |ev| heat.set(event_target_checked(&ev))/>
                            {t("viewer.heatmap")}</label>
                    })}
                </span>
            </figcaption>
        </figure>
    }
}

/// The browser side: fetch, pointer capture, full screen.
#[cfg(feature = "hydrate")]
mod browser {
    use super::WindowInfo;
    use wasm_bindgen::{JsCast, JsValue};
    use wasm_bindgen_futures::JsFuture;

    fn number(v: &JsValue, key: &str) -> Option<f64> {
        js_sys::Reflect::get(v, &JsValue::from_str(key))
            .ok()
            .and_then(|v| v.as_f64())
    }

    pub async fn window_info(sha: &str) -> Option<WindowInfo> {
        let window = web_sys::window()?;
        let response = JsFuture::from(window.fetch_with_str(&format!("/images/{sha}/window.json")))
            .await
            .ok()?
            .dyn_into::<web_sys::Response>()
            .ok()?;
        if !response.ok() {
            return None;
        }
        let json = JsFuture::from(response.json().ok()?).await.ok()?;
        Some(WindowInfo {
            centre: number(&json, "centre")?,
            width: number(&json, "width")?,
            min: number(&json, "min")?,
            max: number(&json, "max")?,
            monochrome1: js_sys::Reflect::get(&json, &JsValue::from_str("monochrome1"))
                .ok()
                .and_then(|v| v.as_bool())
                .unwrap_or(false),
        })
    }

    pub fn capture_pointer(ev: &web_sys::PointerEvent) {
        if let Some(el) = ev
            .current_target()
            .and_then(|t| t.dyn_into::<web_sys::Element>().ok())
        {
            let _ = el.set_pointer_capture(ev.pointer_id());
        }
    }

    pub fn toggle_fullscreen(el: &web_sys::HtmlElement) {
        let Some(doc) = web_sys::window().and_then(|w| w.document()) else {
            return;
        };
        if doc.fullscreen_element().is_some() {
            doc.exit_fullscreen();
        } else {
            let _ = el.request_fullscreen();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const INFO: WindowInfo = WindowInfo {
        centre: 2048.0,
        width: 1000.0,
        min: 0.0,
        max: 4000.0,
        monochrome1: false,
    };

    #[test]
    fn presets_follow_the_default_window_and_the_range() {
        assert_eq!(
            Preset::Default.window(&INFO),
            Win {
                centre: 2048.0,
                width: 1000.0
            }
        );
        assert_eq!(
            Preset::Full.window(&INFO),
            Win {
                centre: 2000.5,
                width: 4001.0
            }
        );
        assert_eq!(
            Preset::Bone.window(&INFO),
            Win {
                centre: 2298.0,
                width: 500.0
            }
        );
        assert_eq!(
            Preset::Soft.window(&INFO),
            Win {
                centre: 1798.0,
                width: 500.0
            }
        );
        let mono1 = WindowInfo {
            monochrome1: true,
            ..INFO
        };
        assert_eq!(Preset::Bone.window(&mono1).centre, 1798.0);
    }

    #[test]
    fn dragging_right_widens_and_down_raises_the_level() {
        let start = Preset::Default.window(&INFO);
        let w = drag_window(start, &INFO, 40.0, -20.0);
        assert_eq!(
            w,
            Win {
                centre: 1848.0,
                width: 1400.0
            }
        );
        // Never narrower than 1.
        assert_eq!(drag_window(start, &INFO, -4000.0, 0.0).width, 1.0);
    }

    #[test]
    fn the_remap_is_the_new_window_in_the_old_display_values() {
        let shown = Win {
            centre: 2000.0,
            width: 1000.0,
        };
        let wanted = Win {
            centre: 2100.0,
            width: 500.0,
        };
        let (a, b) = remap(shown, wanted, false);
        // Check at three modality values inside the shown window.
        for x in [1600.0, 2000.0, 2300.0] {
            let v0 = (x - (shown.centre - shown.width / 2.0)) / shown.width;
            let v1 = (x - (wanted.centre - wanted.width / 2.0)) / wanted.width;
            assert!((a * v0 + b - v1).abs() < 1e-12, "{x}");
            // MONOCHROME1: both displays inverted.
            let (a1, b1) = remap(shown, wanted, true);
            assert!((a1 * (1.0 - v0) + b1 - (1.0 - v1)).abs() < 1e-12, "{x}");
        }
        assert_eq!(remap(shown, shown, false), (1.0, 0.0));
    }

    #[test]
    fn zoom_stays_in_range_and_urls_name_the_window() {
        assert_eq!(zoomed(15.0, 2.0), ZOOM_MAX);
        assert_eq!(zoomed(0.3, 0.5), ZOOM_MIN);
        let sha = "a".repeat(64);
        assert_eq!(
            image_url(&sha, None),
            format!("/images/{sha}/preview.png?size=2048")
        );
        assert_eq!(
            image_url(
                &sha,
                Some(Win {
                    centre: 10.04,
                    width: 0.5
                })
            ),
            format!("/images/{sha}/preview.png?size=2048&wc=10.0&ww=1.0")
        );
    }
}
