import { publish, register } from "labc";

export interface LightControlOptions {
  /** Where the light controller is attached (set in `[services.LightControl] port = "..."`). */
  port?: string;
  /** The lights it drives. */
  channels?: string[];
}

/**
 * An example service for the README's tutorial: keeps the level (0–100) of each light, lets
 * anyone set and read them, and publishes `lights.changed` on every change.
 */
export class LightControl {
  private readonly levels = new Map<string, number>();

  constructor(private readonly options: LightControlOptions = {}) {
    for (const channel of options.channels ?? ["ceiling", "desk"]) this.levels.set(channel, 0);
  }

  @register()
  set(channel: string, level: number) {
    if (!this.levels.has(channel)) throw new RangeError(`no light "${channel}" (lights: ${[...this.levels.keys()].join(", ")})`);
    if (typeof level !== "number" || level < 0 || level > 100) throw new RangeError(`a level is 0 to 100, not ${level}`);
    this.levels.set(channel, level);
    void publish(`lights.changed.${channel}`, { channel, level });
    return level;
  }

  @register()
  get(channel?: string) {
    if (channel === undefined) return Object.fromEntries(this.levels);
    const level = this.levels.get(channel);
    if (level === undefined) throw new RangeError(`no light "${channel}"`);
    return level;
  }

  @register()
  port() {
    return this.options.port ?? "(simulated)";
  }
}
